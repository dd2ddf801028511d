using Orleans.Streams;
using PumpFleet.EventStore;

namespace PumpFleet.Streaming;

/// <summary>
/// A position in a log partition: the gap-safe pair (transaction id, global position) of the event, and an index
/// that orders the two deliveries of one event (0 on its stream, 1 on its partition's stream). Ordered exactly as the
/// receiver reads, so a consumer can subscribe from a token it kept (rewind) and the cache can find it. The global
/// position alone is not monotonic in that order (a late-committing transaction holds lower positions), so
/// <see cref="SequenceNumber"/> is informational; comparisons use the pair.
/// </summary>
[GenerateSerializer, Immutable, Alias("pumpfleet.log-token.v1")]
public sealed class LogSequenceToken : StreamSequenceToken
{
    /// <summary>Creates a token.</summary>
    public LogSequenceToken(ulong transactionId, long position, int eventIndex)
    {
        TransactionId = transactionId;
        SequenceNumber = position;
        EventIndex = eventIndex;
    }

    /// <summary>The token of the first delivery of the event at <paramref name="checkpoint"/>: subscribing from it replays that event.</summary>
    public static LogSequenceToken At(GlobalCheckpoint checkpoint) => new(checkpoint.TransactionId, checkpoint.Position, 0);

    /// <summary>The event's transaction id (xid8).</summary>
    [Id(0)]
    public ulong TransactionId { get; private set; }

    /// <summary>The event's global position.</summary>
    [Id(1)]
    public override long SequenceNumber { get; protected set; }

    /// <inheritdoc />
    [Id(2)]
    public override int EventIndex { get; protected set; }

    /// <summary>The event's position in the log.</summary>
    public GlobalCheckpoint Checkpoint => new(TransactionId, SequenceNumber);

    /// <inheritdoc />
    public override bool Equals(StreamSequenceToken? other) => other is not null && CompareTo(other) == 0;

    /// <inheritdoc />
    public override bool Equals(object? obj) => obj is StreamSequenceToken t && Equals(t);

    /// <inheritdoc />
    public override int GetHashCode() => HashCode.Combine(TransactionId, SequenceNumber, EventIndex);

    /// <inheritdoc />
    public override int CompareTo(StreamSequenceToken? other)
    {
        if (other is null)
        {
            return 1;
        }

        if (other is not LogSequenceToken token)
        {
            throw new ArgumentException($"A {nameof(LogSequenceToken)} cannot be compared with a {other.GetType().Name}.", nameof(other));
        }

        var c = TransactionId.CompareTo(token.TransactionId);
        if (c == 0)
        {
            c = SequenceNumber.CompareTo(token.SequenceNumber);
        }

        return c != 0 ? c : EventIndex.CompareTo(token.EventIndex);
    }

    /// <inheritdoc />
    public override string ToString() => $"{TransactionId}:{SequenceNumber}#{EventIndex}";
}
