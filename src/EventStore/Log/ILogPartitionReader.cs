namespace PumpFleet.EventStore.Log;

/// <summary>Reads one partition of the event log in the gap-safe order (the stream provider's receivers).</summary>
public interface ILogPartitionReader
{
    /// <summary>
    /// Reads up to <paramref name="limit"/> events of partition <paramref name="partition"/> after
    /// <paramref name="after"/>, in <c>(transaction_id, global_position)</c> order and only below the oldest
    /// transaction still in flight, so an event whose transaction commits late is returned later, never skipped.
    /// </summary>
    Task<GlobalPage> ReadPartitionAsync(int partition, GlobalCheckpoint after, int limit, CancellationToken ct = default);

    /// <summary>
    /// <see cref="ReadPartitionAsync"/> for the live path (the log stream's receivers): a page that reaches the
    /// partition's end is read now, never taken from an earlier read of another reader (<see cref="LogTailCache"/>
    /// answers it only with a full page it holds, and keeps what it reads for the others).
    /// </summary>
    Task<GlobalPage> ReadPartitionLatestAsync(int partition, GlobalCheckpoint after, int limit, CancellationToken ct = default) =>
        ReadPartitionAsync(partition, after, limit, ct);

    /// <summary>
    /// The newest committed event of partition <paramref name="partition"/> in the gap-safe order, or null when the
    /// partition is empty: a reader whose checkpoint is there has read everything of that partition.
    /// </summary>
    Task<GlobalCheckpoint?> ReadPartitionHeadAsync(int partition, CancellationToken ct = default);

    /// <summary>Events of partition <paramref name="partition"/> after <paramref name="after"/>, counted up to <paramref name="cap"/> (a lag figure).</summary>
    Task<long> CountPartitionAfterAsync(int partition, GlobalCheckpoint after, long cap, CancellationToken ct = default);

    /// <summary>
    /// Moves checkpoint <paramref name="name"/> forward to <paramref name="checkpoint"/>, never backward (two
    /// receivers may briefly own one queue while it moves between silos). Returns the stored position.
    /// </summary>
    Task<GlobalCheckpoint> AdvanceCheckpointAsync(string name, GlobalCheckpoint checkpoint, CancellationToken ct = default);
}
