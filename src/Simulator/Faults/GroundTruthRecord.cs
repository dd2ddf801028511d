using System.Text.Json.Nodes;

namespace PumpFleet.Simulator.Faults;

/// <summary>One injected fault, as written to the ground-truth NDJSON file.</summary>
/// <param name="Serial">Affected pump.</param>
/// <param name="HubId">The pump's hub.</param>
/// <param name="Kind">One of <see cref="FaultKind.All"/>.</param>
/// <param name="Start">Simulated start.</param>
/// <param name="End">Simulated end, or null when the fault lasts to the end of the run (or for good).</param>
/// <param name="Parameters">Kind-specific parameters.</param>
public sealed record GroundTruthRecord(string Serial, string HubId, string Kind, DateTimeOffset Start, DateTimeOffset? End, JsonObject Parameters);
