using PumpFleet.Contracts.Events;

namespace PumpFleet.Domain.Drugs;

/// <summary>
/// Concentration units: every mass-per-volume unit is brought to mcg/mL, so 1 mg/mL and 1000 mcg/mL compare equal
/// and a daily dose comes out in mcg/day whatever the pump sent. An unrecognised unit gives null (not guessed).
/// </summary>
public static class ConcentrationUnits
{
    /// <summary>Relative tolerance when comparing concentrations (rounding in the programmer's display, not a clinical margin).</summary>
    public const double RelativeTolerance = 0.005;

    /// <summary>The concentration in mcg/mL, or null when the unit is not a mass-per-volume unit we know.</summary>
    public static double? ToMcgPerMl(Concentration? c)
    {
        if (c is null || !double.IsFinite(c.Value))
        {
            return null;
        }

        return MassFactorToMcg(c.Unit) is { } f ? c.Value * f : null;
    }

    /// <summary>True when both are known and equal within <see cref="RelativeTolerance"/>.</summary>
    public static bool Same(double mcgPerMlA, double mcgPerMlB) =>
        Math.Abs(mcgPerMlA - mcgPerMlB) <= RelativeTolerance * Math.Max(Math.Abs(mcgPerMlA), Math.Abs(mcgPerMlB));

    // Factor from the unit's mass per mL to mcg per mL.
    private static double? MassFactorToMcg(string? unit)
    {
        if (string.IsNullOrWhiteSpace(unit))
        {
            return null;
        }

        var u = unit.Replace(" ", "", StringComparison.Ordinal).ToLowerInvariant();
        var slash = u.IndexOf('/', StringComparison.Ordinal);
        if (slash < 0)
        {
            return null;
        }

        double? mass = u[..slash] switch
        {
            "g" => 1e6,
            "mg" => 1e3,
            "mcg" or "µg" or "μg" or "ug" or "microgram" or "micrograms" => 1,
            "ng" => 1e-3,
            _ => null,
        };
        double? volume = u[(slash + 1)..] switch
        {
            "ml" => 1,
            "l" => 1e-3,
            _ => null,
        };
        return mass is { } m && volume is { } v ? m * v : null;
    }
}
