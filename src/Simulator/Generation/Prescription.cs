using System.Globalization;
using PumpFleet.Contracts.Events;

namespace PumpFleet.Simulator.Generation;

/// <summary>A programmed prescription and the arithmetic the pump does with it.</summary>
internal sealed class Prescription
{
    public required DrugSpec Drug { get; init; }
    public required double ConcentrationValue { get; init; }
    public required bool Flex { get; init; }

    /// <summary>Steps as (minute of day, mL/day), ordered, the first at minute 0. Continuous mode has one step.</summary>
    public required IReadOnlyList<(int Minute, double Rate)> Steps { get; init; }
    public BolusSettings? Bolus { get; init; }
    public required double LowReservoirAlarmMl { get; init; }

    public Concentration Concentration => Catalog.ConcentrationOf(Drug, ConcentrationValue);

    public double AverageRateMlPerDay
    {
        get
        {
            var total = 0.0;
            for (var i = 0; i < Steps.Count; i++)
            {
                var end = i + 1 < Steps.Count ? Steps[i + 1].Minute : 1440;
                total += Steps[i].Rate * (end - Steps[i].Minute);
            }

            return total / 1440;
        }
    }

    /// <summary>Programmed volume between two instants, integrating a flex schedule across its step boundaries.</summary>
    public double Volume(DateTimeOffset from, DateTimeOffset to)
    {
        if (to <= from)
        {
            return 0;
        }

        if (Steps.Count == 1)
        {
            return Steps[0].Rate * (to - from).TotalDays;
        }

        var total = 0.0;
        var cur = from;
        while (cur < to)
        {
            var minute = (cur.UtcDateTime.TimeOfDay.TotalMinutes);
            var i = Steps.Count - 1;
            while (Steps[i].Minute > minute)
            {
                i--;
            }

            var nextMinute = i + 1 < Steps.Count ? Steps[i + 1].Minute : 1440;
            var boundary = cur.UtcDateTime.Date.AddMinutes(nextMinute);
            var segEnd = new DateTimeOffset(boundary, TimeSpan.Zero) < to ? new DateTimeOffset(boundary, TimeSpan.Zero) : to;
            total += Steps[i].Rate * (segEnd - cur).TotalDays;
            cur = segEnd;
        }

        return total;
    }

    /// <summary>The same prescription with every rate scaled (a titration at refill).</summary>
    public Prescription Titrate(double factor) => new()
    {
        Drug = Drug,
        ConcentrationValue = ConcentrationValue,
        Flex = Flex,
        Steps = [.. Steps.Select(s => (s.Minute, ClampRate(s.Rate * factor)))],
        Bolus = Bolus,
        LowReservoirAlarmMl = LowReservoirAlarmMl,
    };

    public static double ClampRate(double rate) => Math.Round(Math.Clamp(rate, Catalog.MinRateMlPerDay, Catalog.MaxRateMlPerDay), 3);

    public PrescriptionSet ToEvent() => new()
    {
        Seq = 0,
        At = default,
        Drug = Drug.Name,
        Concentration = Concentration,
        Mode = Flex ? "flex" : "continuous",
        RateMlPerDay = Flex ? null : Steps[0].Rate,
        Schedule = Flex
            ? [.. Steps.Select(s => new FlexStep
            {
                Start = string.Create(CultureInfo.InvariantCulture, $"{s.Minute / 60:D2}:{s.Minute % 60:D2}"),
                RateMlPerDay = s.Rate,
            })]
            : null,
        Bolus = Bolus,
        LowReservoirAlarmMl = LowReservoirAlarmMl,
    };

    /// <summary>A new prescription for a drug: daily dose within the drug's range, rate clamped to the fleet's 0.05–1.5 mL/day.</summary>
    public static Prescription Create(DrugSpec drug, Random r)
    {
        var conc = r.Pick(drug.Concentrations);
        var rate = ClampRate(r.Uniform(drug.MinDailyDose, drug.MaxDailyDose) / conc);
        var flex = r.Chance(0.25);
        IReadOnlyList<(int, double)> steps = flex
            ? [(0, ClampRate(rate * 0.8)), (8 * 60, ClampRate(rate * 1.2)), (20 * 60, rate)]
            : [(0, rate)];
        BolusSettings? bolus = drug.PatientBolus && r.Chance(0.5)
            ? new BolusSettings
            {
                DoseMl = r.Pick([0.01, 0.02, 0.025, 0.05]),
                LockoutMin = r.Pick([60, 120, 180, 240]),
                MaxPerDay = r.Pick([2, 3, 4, 6]),
            }
            : null;

        // 2 mL was the labelled recommendation; 4 mL prevented early withdrawal in one series (§0.4).
        var alarm = r.PickWeighted<double>([(2, 60), (3, 10), (4, 30)]);
        return new Prescription { Drug = drug, ConcentrationValue = conc, Flex = flex, Steps = steps, Bolus = bolus, LowReservoirAlarmMl = alarm };
    }
}
