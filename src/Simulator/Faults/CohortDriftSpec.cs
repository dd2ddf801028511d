namespace PumpFleet.Simulator.Faults;

/// <summary>A cohort with raised fault rates: the signal a cohort analysis should find.</summary>
public sealed record CohortDriftSpec
{
    /// <summary>Firmware version of the cohort (or use <see cref="Lot"/>).</summary>
    public string? Firmware { get; init; }

    /// <summary>Manufacturing lot of the cohort.</summary>
    public string? Lot { get; init; }

    /// <summary>Kinds whose rates are multiplied. Default: full-stall and intermittent-stall.</summary>
    public List<string>? Kinds { get; init; }

    /// <summary>Rate multiplier.</summary>
    public double RateMultiplier { get; init; } = 10;
}
