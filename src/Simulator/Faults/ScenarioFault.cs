using System.Text.Json.Nodes;

namespace PumpFleet.Simulator.Faults;

/// <summary>One explicit fault.</summary>
public sealed record ScenarioFault
{
    /// <summary>Fault kind.</summary>
    public required string Kind { get; init; }

    /// <summary>Target pump by serial.</summary>
    public string? Serial { get; init; }

    /// <summary>Target pump by its 0-based index in the fleet.</summary>
    public int? PumpIndex { get; init; }

    /// <summary>Target hub (silent-hub only).</summary>
    public string? HubId { get; init; }

    /// <summary>Absolute start.</summary>
    public DateTimeOffset? Start { get; init; }

    /// <summary>Start relative to the simulation start.</summary>
    public double? StartAfterDays { get; init; }

    /// <summary>Absolute end.</summary>
    public DateTimeOffset? End { get; init; }

    /// <summary>Duration; without end or duration the fault lasts for good.</summary>
    public double? DurationDays { get; init; }

    /// <summary>Kind-specific parameters (see docs/simulator.md).</summary>
    public JsonObject? Parameters { get; init; }
}
