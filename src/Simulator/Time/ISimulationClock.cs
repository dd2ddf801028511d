namespace PumpFleet.Simulator.Time;

/// <summary>Paces the transport along simulated time. Generation never looks at a clock; only the MQTT runner waits.</summary>
public interface ISimulationClock
{
    /// <summary>The current simulated time.</summary>
    DateTimeOffset Now { get; }

    /// <summary>Completes when simulated time has reached <paramref name="simTime"/>.</summary>
    ValueTask WaitUntilAsync(DateTimeOffset simTime, CancellationToken cancellationToken);
}
