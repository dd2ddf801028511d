namespace PumpFleet.EventStore;

/// <summary>An event to append: payload already serialised to JSON under a stable type name.</summary>
/// <param name="EventId">Idempotency key: an ambiguous commit retried with the same ids is stored once.</param>
/// <param name="Type">Stable type name, e.g. <c>dose.delivered</c>.</param>
/// <param name="Data">JSON payload.</param>
/// <param name="Seq">Device seq, or null for platform events. Unique per stream.</param>
/// <param name="DeviceTime">The pump's timestamp, or null.</param>
/// <param name="ReceivedAt">When the platform received it.</param>
/// <param name="ClockSuspect">The device time is not trusted (future, backwards or before 2010).</param>
/// <param name="Metadata">Optional JSON object (hub id, message id, trace id…).</param>
public sealed record EventToAppend(
    Guid EventId, string Type, string Data, long? Seq, DateTimeOffset? DeviceTime, DateTimeOffset ReceivedAt,
    bool ClockSuspect = false, string? Metadata = null);

/// <summary>An event as stored.</summary>
public sealed record StoredEvent(
    long GlobalPosition, ulong TransactionId, string StreamId, long Version, Guid EventId, string Type,
    long? Seq, DateTimeOffset? DeviceTime, DateTimeOffset ReceivedAt, bool ClockSuspect, string Data, string? Metadata)
{
    /// <summary>The position of this event in the gap-safe global order.</summary>
    public GlobalCheckpoint Checkpoint => new(TransactionId, GlobalPosition);
}

/// <summary>Result of an append.</summary>
/// <param name="NextExpectedVersion">The stream's version after the append.</param>
/// <param name="AlreadyStored">True when every event was already stored by an earlier (ambiguous) attempt.</param>
public sealed record AppendResult(long NextExpectedVersion, bool AlreadyStored);

/// <summary>A position in the gap-safe global order: (transaction id, global position).</summary>
public readonly record struct GlobalCheckpoint(ulong TransactionId, long Position) : IComparable<GlobalCheckpoint>
{
    /// <summary>Before the first event.</summary>
    public static GlobalCheckpoint Start => default;

    /// <inheritdoc />
    public int CompareTo(GlobalCheckpoint other)
    {
        var c = TransactionId.CompareTo(other.TransactionId);
        return c != 0 ? c : Position.CompareTo(other.Position);
    }

    /// <inheritdoc />
    public override string ToString() => $"{TransactionId}:{Position}";
}

/// <summary>A page of the global log.</summary>
/// <param name="Events">Events in commit-safe order.</param>
/// <param name="Next">Checkpoint to resume from (equal to the input when the page is empty).</param>
public sealed record GlobalPage(IReadOnlyList<StoredEvent> Events, GlobalCheckpoint Next);

/// <summary>A stored snapshot of a stream's folded state.</summary>
public sealed record Snapshot(string StreamId, long Version, int SchemaVersion, string State);

/// <summary>A stream's latest snapshot of the asked schema (or null) and the events after it (all of them without one), in version order.</summary>
public sealed record StreamTail(Snapshot? Snapshot, IReadOnlyList<StoredEvent> Events);

/// <summary>Thrown when the expected version is stale: another writer appended first.</summary>
public sealed class WrongExpectedVersionException : Exception
{
    /// <summary>Creates the exception.</summary>
    public WrongExpectedVersionException(string streamId, long expectedVersion, Exception? inner = null)
        : base($"Stream '{streamId}' is not at version {expectedVersion}: another writer appended first.", inner)
    {
        StreamId = streamId;
        ExpectedVersion = expectedVersion;
    }

    /// <summary>Creates the exception.</summary>
    public WrongExpectedVersionException() : base("Wrong expected version.") => StreamId = "";

    /// <summary>Creates the exception.</summary>
    public WrongExpectedVersionException(string message) : base(message) => StreamId = "";

    /// <summary>Creates the exception.</summary>
    public WrongExpectedVersionException(string message, Exception inner) : base(message, inner) => StreamId = "";

    /// <summary>The stream.</summary>
    public string StreamId { get; }

    /// <summary>The version the writer expected.</summary>
    public long ExpectedVersion { get; }
}

/// <summary>The newest committed event of the global log.</summary>
public sealed record LogHead(GlobalCheckpoint Checkpoint, DateTimeOffset ReceivedAt);

/// <summary>
/// A stream's latest snapshot written in the same transaction as an append, after its events: the state at the
/// append's last version (<c>ExpectedVersion + Events.Count</c>). <paramref name="KeepCoversUntil"/> also keeps it
/// for as-of views (<see cref="ISnapshotStore.SaveHistoricalSnapshotAsync"/>).
/// </summary>
public sealed record SnapshotWrite(int SchemaVersion, string State, DateTimeOffset? KeepCoversUntil);

/// <summary>One stream's append: its events at <paramref name="ExpectedVersion"/>+1.., and optionally its snapshot.</summary>
public sealed record StreamAppend(string StreamId, long ExpectedVersion, IReadOnlyList<EventToAppend> Events, SnapshotWrite? Snapshot = null);

/// <summary>An append the database refused for a reason other than concurrency (e.g. a payload that is not JSON); other streams' appends in the same group are unaffected.</summary>
public sealed class AppendFailedException(string streamId, string sqlState, string message)
    : Exception($"Append to stream '{streamId}' failed: {sqlState} {message}")
{
    /// <summary>The stream.</summary>
    public string StreamId { get; } = streamId;

    /// <summary>PostgreSQL's SQLSTATE.</summary>
    public string SqlState { get; } = sqlState;
}
