namespace PumpFleet.EventStore;

/// <summary>Append-only event store with per-stream optimistic concurrency and a gap-safe global log.</summary>
public interface IEventStore
{
    /// <summary>
    /// Appends <paramref name="events"/> at versions <paramref name="expectedVersion"/>+1.. in one round trip and one
    /// transaction. Throws <see cref="WrongExpectedVersionException"/> when the stream is not at
    /// <paramref name="expectedVersion"/>; succeeds without storing anything when every event id is already stored
    /// (an ambiguous earlier commit).
    /// </summary>
    Task<AppendResult> AppendAsync(string streamId, long expectedVersion, IReadOnlyList<EventToAppend> events, CancellationToken ct = default);

    /// <summary>Reads a stream's events with version greater than <paramref name="afterVersion"/>, in version order.</summary>
    IAsyncEnumerable<StoredEvent> ReadStreamAsync(string streamId, long afterVersion = 0, CancellationToken ct = default);

    /// <summary>Reads up to <paramref name="maxCount"/> events of a stream with seq above <paramref name="afterSeq"/>, in seq order.</summary>
    Task<IReadOnlyList<StoredEvent>> ReadStreamBySeqAsync(string streamId, long afterSeq, int maxCount, CancellationToken ct = default);

    /// <summary>
    /// Reads the next events of the global log after <paramref name="after"/>. Only events whose transaction is older than
    /// every transaction still in flight are returned, so an event that commits late is never skipped.
    /// </summary>
    Task<GlobalPage> ReadAllAsync(GlobalCheckpoint after, int maxCount, CancellationToken ct = default);

    /// <summary>Stores a snapshot unless a newer one exists.</summary>
    Task SaveSnapshotAsync(Snapshot snapshot, CancellationToken ct = default);

    /// <summary>Loads the latest snapshot, or null.</summary>
    Task<Snapshot?> LoadSnapshotAsync(string streamId, CancellationToken ct = default);

    /// <summary>Loads a named consumer checkpoint (<see cref="GlobalCheckpoint.Start"/> when none).</summary>
    Task<GlobalCheckpoint> LoadCheckpointAsync(string name, CancellationToken ct = default);

    /// <summary>Saves a named consumer checkpoint.</summary>
    Task SaveCheckpointAsync(string name, GlobalCheckpoint checkpoint, CancellationToken ct = default);
}
