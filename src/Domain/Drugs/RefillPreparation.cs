using PumpFleet.Contracts.Events;

namespace PumpFleet.Domain.Drugs;

/// <summary>What a refill needs prepared: the volume to draw up and the amount of drug in it.</summary>
/// <param name="FillVolumeMl">The reservoir's capacity: the residual is aspirated and discarded, then the pump is filled (§4).</param>
/// <param name="DrugAmount">Capacity × concentration, in <paramref name="AmountUnit"/>; null when the concentration's unit is not a known mass per volume.</param>
/// <param name="AmountUnit">"mg", "mcg", "g" or "ng" (the concentration's mass unit), or null.</param>
public sealed record RefillPreparation(double FillVolumeMl, double? DrugAmount, string? AmountUnit)
{
    /// <summary>
    /// The preparation for a reservoir of <paramref name="capacityMl"/> at <paramref name="concentration"/>. A unit
    /// that is not a mass per mL or L gives no amount (never guessed; docs/detection.md, concentration units).
    /// </summary>
    public static RefillPreparation? For(double? capacityMl, Concentration? concentration)
    {
        if (capacityMl is not { } capacity || !(capacity > 0) || !double.IsFinite(capacity))
        {
            return null;
        }

        if (concentration is null || ConcentrationUnits.ToMcgPerMl(concentration) is not { } mcgPerMl)
        {
            return new RefillPreparation(capacity, null, null);
        }

        var unit = MassUnit(concentration.Unit);
        var perMcg = unit switch { "g" => 1e-6, "mg" => 1e-3, "mcg" => 1, "ng" => 1e3, _ => 1 };
        return new RefillPreparation(capacity, Math.Round(capacity * mcgPerMl * perMcg, 6), unit ?? "mcg");
    }

    private static string? MassUnit(string? unit)
    {
        var mass = unit?.Split('/')[0].Trim().ToLowerInvariant();
        return mass switch
        {
            "g" => "g",
            "mg" => "mg",
            "mcg" or "µg" or "μg" or "ug" => "mcg",
            "ng" => "ng",
            _ => null,
        };
    }
}
