namespace PumpFleet.Simulator.Generation;

/// <summary>A period when a hub publishes nothing; <see cref="Silent"/> marks an injected silent-hub fault.</summary>
internal sealed record HubOutage(DateTimeOffset Start, DateTimeOffset End, bool Silent);
