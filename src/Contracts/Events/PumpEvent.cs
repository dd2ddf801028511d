namespace PumpFleet.Contracts.Events;

/// <summary>
/// Base of every event in a pump's stream. <see cref="At"/> is event time: the pump's clock for device events,
/// the time the platform decided for its own events. Folds and detectors run on it, never on wall time.
/// </summary>
[GenerateSerializer, Immutable, Alias("pumpfleet.PumpEvent.v1")]
public abstract record PumpEvent
{
    /// <summary>Event time (RFC 3339 on the wire, always UTC in the platform).</summary>
    [Id(0)] public required DateTimeOffset At { get; init; }
}

/// <summary>An event reported by the pump itself, identified forever by (serial, <see cref="Seq"/>).</summary>
[GenerateSerializer, Immutable, Alias("pumpfleet.DeviceEvent.v1")]
public abstract record DeviceEvent : PumpEvent
{
    /// <summary>The pump's own event counter, ≥ 1.</summary>
    [Id(0)] public required long Seq { get; init; }
}
