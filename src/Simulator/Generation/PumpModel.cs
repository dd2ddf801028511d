namespace PumpFleet.Simulator.Generation;

/// <summary>A pump model as the simulator knows it.</summary>
public sealed record PumpModel(string Name, double CapacityMl, IReadOnlyList<string> Firmwares, IReadOnlyList<string> Lots);
