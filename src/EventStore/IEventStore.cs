using Npgsql;

namespace PumpFleet.EventStore;

/// <summary>Reads the event log: one stream (grains, the API's event list) or the global log (projections).</summary>
public interface IEventReader
{
    /// <summary>Reads a stream's events with version greater than <paramref name="afterVersion"/>, in version order.</summary>
    IAsyncEnumerable<StoredEvent> ReadStreamAsync(string streamId, long afterVersion = 0, CancellationToken ct = default);

    /// <summary>
    /// Reads a stream's events with version greater than <paramref name="afterVersion"/> whose event time is at or
    /// before <paramref name="asOf"/> (a clock-suspect device event's receive time; a platform event's <c>at</c>), plus
    /// every <c>device.identified</c> and <c>pump.paired</c> (an as-of view shows the identity of the data it
    /// contains), in version order: the tail of an as-of fold, without the events after the time.
    /// </summary>
    IAsyncEnumerable<StoredEvent> ReadStreamAsOfAsync(string streamId, long afterVersion, DateTimeOffset asOf, CancellationToken ct = default);

    /// <summary>Reads up to <paramref name="maxCount"/> events of a stream with seq above <paramref name="afterSeq"/>, in seq order.</summary>
    Task<IReadOnlyList<StoredEvent>> ReadStreamBySeqAsync(string streamId, long afterSeq, int maxCount, CancellationToken ct = default);

    /// <summary>
    /// Reads the next events of the global log after <paramref name="after"/>. Only events whose transaction is older than
    /// every transaction still in flight are returned, so an event that commits late is never skipped.
    /// </summary>
    Task<GlobalPage> ReadAllAsync(GlobalCheckpoint after, int maxCount, CancellationToken ct = default);

    /// <summary>The newest committed event's position and receive time in the global order, or null when the log is empty.</summary>
    Task<LogHead?> ReadHeadAsync(CancellationToken ct = default);

    /// <summary>Events committed after <paramref name="after"/>, counted up to <paramref name="cap"/> (a lag figure, not an exact total).</summary>
    Task<long> CountAfterAsync(GlobalCheckpoint after, long cap, CancellationToken ct = default);
}

/// <summary>Appends to streams with per-stream optimistic concurrency (grains, fleet jobs).</summary>
public interface IEventWriter
{
    /// <summary>
    /// Appends <paramref name="events"/> at versions <paramref name="expectedVersion"/>+1.. in one round trip and one
    /// transaction. Throws <see cref="WrongExpectedVersionException"/> when the stream is not at
    /// <paramref name="expectedVersion"/>; succeeds without storing anything when every event id is already stored
    /// (an ambiguous earlier commit).
    /// </summary>
    Task<AppendResult> AppendAsync(string streamId, long expectedVersion, IReadOnlyList<EventToAppend> events, CancellationToken ct = default);

    /// <summary>
    /// Appends like <see cref="AppendAsync(string, long, IReadOnlyList{EventToAppend}, CancellationToken)"/> and, when the
    /// events are appended, stores <see cref="StreamAppend.Snapshot"/> in the same transaction (one commit for both).
    /// With group commit on (<see cref="GroupCommitOptions"/>) concurrent appends of different streams share one
    /// transaction; a conflict or duplicate in one stream is still reported to that stream's caller only.
    /// </summary>
    Task<AppendResult> AppendAsync(StreamAppend append, CancellationToken ct = default);
}

/// <summary>Snapshots of a stream's folded state (grains).</summary>
public interface ISnapshotStore
{
    /// <summary>Stores a snapshot unless a newer one exists.</summary>
    Task SaveSnapshotAsync(Snapshot snapshot, CancellationToken ct = default);

    /// <summary>Loads the latest snapshot, or null.</summary>
    Task<Snapshot?> LoadSnapshotAsync(string streamId, CancellationToken ct = default);

    /// <summary>
    /// Keeps <paramref name="snapshot"/> in the stream's history (beside the latest one): <paramref name="coversUntil"/>
    /// is the latest event time of any event at or below its version. Storing the same version twice keeps the first.
    /// </summary>
    Task SaveHistoricalSnapshotAsync(Snapshot snapshot, DateTimeOffset coversUntil, CancellationToken ct = default);

    /// <summary>
    /// The newest kept snapshot of <paramref name="schemaVersion"/> whose events all lie at or before
    /// <paramref name="asOf"/>, or null: the start of an as-of fold.
    /// </summary>
    Task<Snapshot?> LoadSnapshotAsOfAsync(string streamId, DateTimeOffset asOf, int schemaVersion, CancellationToken ct = default);

    /// <summary>
    /// The start of an activation in one round trip and one statement: the latest snapshot of
    /// <paramref name="schemaVersion"/> (a snapshot of another schema is ignored, as if there were none) and every event
    /// after it, in version order. One statement reads both at one database snapshot, so a snapshot written between two
    /// reads cannot make events go missing.
    /// </summary>
    Task<StreamTail> LoadSnapshotAndTailAsync(string streamId, int schemaVersion, CancellationToken ct = default);
}

/// <summary>
/// Named consumer checkpoints in the global log (projections). <see cref="LockAsync"/> and
/// <see cref="LockPrefixAsync"/> open a transaction holding the checkpoint rows, so a consumer's own writes commit
/// together with the checkpoint or not at all.
/// </summary>
public interface ICheckpointStore
{
    /// <summary>Loads a named consumer checkpoint (<see cref="GlobalCheckpoint.Start"/> when none).</summary>
    Task<GlobalCheckpoint> LoadCheckpointAsync(string name, CancellationToken ct = default);

    /// <summary>Saves a named consumer checkpoint.</summary>
    Task SaveCheckpointAsync(string name, GlobalCheckpoint checkpoint, CancellationToken ct = default);

    /// <summary>
    /// Opens a transaction that holds checkpoint <paramref name="name"/> (created at the start when missing) and reads
    /// its newest committed position: two workers can never both apply the same page.
    /// </summary>
    Task<CheckpointTransaction> LockAsync(string name, CancellationToken ct = default);

    /// <summary>
    /// As <see cref="LockAsync(string, CancellationToken)"/>, and runs the consumer's <paramref name="alongside"/>
    /// statements right after the lock in the same round trip (reading rows the page needs, issue 14), handing their
    /// results to <paramref name="readAlongside"/> (the reader positioned after the lock's own result). They run whether
    /// or not the checkpoint is where the consumer expects it: a consumer that finds it moved rolls back and uses nothing.
    /// </summary>
    Task<CheckpointTransaction> LockAsync(
        string name, IReadOnlyList<NpgsqlBatchCommand> alongside, Func<NpgsqlDataReader, CancellationToken, Task> readAlongside, CancellationToken ct = default);

    /// <summary>Opens a transaction that holds every checkpoint whose name starts with <paramref name="prefix"/> (waiting for pages in flight).</summary>
    Task<CheckpointTransaction> LockPrefixAsync(string prefix, CancellationToken ct = default);

    /// <summary>
    /// Loads several named checkpoints in one query (<see cref="GlobalCheckpoint.Start"/> for those not stored): a
    /// projection's idle partitions checked in one round trip instead of one each (issue 15, h15w).
    /// </summary>
    Task<IReadOnlyDictionary<string, GlobalCheckpoint>> LoadCheckpointsAsync(IReadOnlyCollection<string> names, CancellationToken ct = default);

    /// <summary>
    /// As <see cref="LockAsync(string, IReadOnlyList{NpgsqlBatchCommand}, Func{NpgsqlDataReader, CancellationToken, Task}, CancellationToken)"/>
    /// for several checkpoints at once (each created at the start when missing), locked in name order: one transaction
    /// that applies the pages of several log partitions (<see cref="CheckpointTransaction.Positions"/> has each one's
    /// newest committed position; <see cref="CheckpointTransaction.AdvanceManyCommand"/> moves them).
    /// </summary>
    Task<CheckpointTransaction> LockManyAsync(
        IReadOnlyCollection<string> names, IReadOnlyList<NpgsqlBatchCommand> alongside, Func<NpgsqlDataReader, CancellationToken, Task> readAlongside, CancellationToken ct = default);
}

/// <summary>The event store as a whole, for callers (and tests) that need every role; prefer the narrow interfaces.</summary>
public interface IEventStore : IEventReader, IEventWriter, ISnapshotStore, ICheckpointStore;
