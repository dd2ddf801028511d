using PumpFleet.EventStore;

namespace PumpFleet.Streaming;

/// <summary>
/// The item of every log stream: one committed event as stored, with its place in the log. Delivery is at least
/// once; a consumer that must apply each event once keeps the highest <see cref="Version"/> it applied per
/// <see cref="StreamId"/> (versions are dense and ordered per stream) and drops anything at or below it.
/// </summary>
[GenerateSerializer, Immutable, Alias("pumpfleet.committed-event.v1")]
public sealed record CommittedEvent(
    [property: Id(0)] string StreamId,
    [property: Id(1)] long Version,
    [property: Id(2)] Guid EventId,
    [property: Id(3)] string Type,
    [property: Id(4)] long? Seq,
    [property: Id(5)] DateTimeOffset? DeviceTime,
    [property: Id(6)] DateTimeOffset ReceivedAt,
    [property: Id(7)] bool ClockSuspect,
    [property: Id(8)] string Data,
    [property: Id(9)] string? Metadata,
    [property: Id(10)] ulong TransactionId,
    [property: Id(11)] long GlobalPosition)
{
    /// <summary>The event as read from the store.</summary>
    public static CommittedEvent From(StoredEvent e) => new(
        e.StreamId, e.Version, e.EventId, e.Type, e.Seq, e.DeviceTime, e.ReceivedAt, e.ClockSuspect, e.Data, e.Metadata,
        e.TransactionId, e.GlobalPosition);

    /// <summary>Its position in the gap-safe order of the log.</summary>
    public GlobalCheckpoint Checkpoint => new(TransactionId, GlobalPosition);
}
