using PumpFleet.Contracts.Events;
using PumpFleet.Domain.Pumps;

namespace PumpFleet.Domain.Drugs;

/// <summary>
/// A prescription's daily dose in mass units: the programmed daily volume (continuous rate, or the flex schedule
/// integrated over a day by <see cref="ProgrammedRate"/>) times the concentration, plus the most the patient boluses
/// can add in a day (dose × maximum per day). The concentration is the primary drug's (the protocol carries one).
/// </summary>
/// <param name="Drug">The normalised drug.</param>
/// <param name="ConcentrationMcgPerMl">Concentration in mcg/mL, or null when the unit is unknown.</param>
/// <param name="VolumeMlPerDay">Programmed volume per day (basal or flex mean).</param>
/// <param name="BolusMlPerDay">Most the patient boluses can add per day.</param>
public sealed record DailyDose(DrugName Drug, double? ConcentrationMcgPerMl, double VolumeMlPerDay, double BolusMlPerDay)
{
    /// <summary>Programmed (basal or flex) dose, mcg/day; null when the concentration's unit is unknown.</summary>
    public double? BasalMcgPerDay => ConcentrationMcgPerMl * VolumeMlPerDay;

    /// <summary>The most the prescription lets the pump deliver in a day, boluses included, mcg/day.</summary>
    public double? MaxMcgPerDay => ConcentrationMcgPerMl * (VolumeMlPerDay + BolusMlPerDay);

    /// <summary>The daily dose of a prescription.</summary>
    public static DailyDose Of(PrescriptionSet rx)
    {
        ArgumentNullException.ThrowIfNull(rx);
        var bolus = rx.Bolus is { } b ? Math.Max(0, b.DoseMl) * Math.Max(0, b.MaxPerDay) : 0;
        return new DailyDose(DrugVocabulary.Normalize(rx.Drug), ConcentrationUnits.ToMcgPerMl(rx.Concentration), ProgrammedRate.DailyRate(rx), bolus);
    }
}
