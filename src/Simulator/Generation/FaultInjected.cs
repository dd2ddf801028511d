using PumpFleet.Simulator.Faults;

namespace PumpFleet.Simulator.Generation;

/// <summary>A fault took effect; its ground truth.</summary>
public sealed record FaultInjected(DateTimeOffset At, GroundTruthRecord Record) : FleetOutput(At);
