namespace PumpFleet.Simulator.Generation;

/// <summary>Something that happens in the fleet at simulated time <see cref="At"/>; the generator yields these in time order.</summary>
public abstract record FleetOutput(DateTimeOffset At);
