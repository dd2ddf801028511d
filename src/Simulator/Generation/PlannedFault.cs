using System.Text.Json.Nodes;

namespace PumpFleet.Simulator.Generation;

/// <summary>A fault planned for a pump; its ground truth is written when it takes effect.</summary>
internal sealed record PlannedFault(string Kind, DateTimeOffset Start, DateTimeOffset? End, JsonObject Parameters);
