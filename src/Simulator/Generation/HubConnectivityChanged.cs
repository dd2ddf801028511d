namespace PumpFleet.Simulator.Generation;

/// <summary>A hub goes offline (ordinary outage or silent-hub fault) or comes back.</summary>
public sealed record HubConnectivityChanged(DateTimeOffset At, string HubId, bool Online) : FleetOutput(At);
