namespace PumpFleet.EventStore.Log;

/// <summary>
/// The newest events of each log partition, read once and shared by every reader of the process (section
/// <c>EventStore:TailCache</c>). The log stream's receivers and each projection read every partition's tail on their
/// own; at 5,000 events/s that made every committed event a PostgreSQL read and a <see cref="StoredEvent"/> six times
/// (docs/benchmarks.md, "The p99 tail at 5,000 events/s"). Each reader keeps its own checkpoint; only the reading is
/// shared.
/// </summary>
/// <remarks>
/// Per partition the cache holds one range <c>(From, Through]</c> and every event of the partition in it, in the
/// gap-safe order, so an answer from it never has a hole: a range is only ever extended by a read that starts inside
/// it, and <c>Through</c> is the last event of a read, or, for a read shorter than its limit, the horizon the read was
/// taken below (no transaction below it can still commit). A request is answered from the cache when it starts inside
/// the range and either the range holds a full page after it, or the range ends at a horizon read at most
/// <see cref="LogTailCacheOptions.MaxAge"/> ago: such a short page is what the reader would have got that long ago,
/// and whatever committed since is read on its next call, as today. Everything else goes to PostgreSQL, and what
/// comes back extends (or replaces) the range.
/// </remarks>
public sealed class LogTailCache(
    ILogPartitionReader inner, ILogPartitionHorizonReader horizonReader, LogTailCacheOptions options, TimeProvider time, EventStoreInstruments? instruments = null)
    : ILogPartitionReader
{
    private readonly Tail[] _tails = [.. Enumerable.Range(0, LogPartitioning.Count).Select(_ => new Tail())];
    private long _hits;
    private long _misses;

    /// <summary>Reads answered from the cache (for tests and benchmarks).</summary>
    public long Hits => Interlocked.Read(ref _hits);

    /// <summary>Reads that went to PostgreSQL.</summary>
    public long Misses => Interlocked.Read(ref _misses);

    /// <inheritdoc />
    public Task<GlobalPage> ReadPartitionAsync(int partition, GlobalCheckpoint after, int limit, CancellationToken ct = default) =>
        ReadAsync(partition, after, limit, options.MaxAge, ct);

    /// <inheritdoc />
    public Task<GlobalPage> ReadPartitionLatestAsync(int partition, GlobalCheckpoint after, int limit, CancellationToken ct = default) =>
        ReadAsync(partition, after, limit, TimeSpan.MinValue, ct);

    private async Task<GlobalPage> ReadAsync(int partition, GlobalCheckpoint after, int limit, TimeSpan maxAge, CancellationToken ct)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(partition);
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(partition, LogPartitioning.Count);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(limit);
        var tail = _tails[partition];
        var now = time.GetUtcNow();
        lock (tail.Gate)
        {
            if (tail.Holds && after.CompareTo(tail.From) >= 0 && after.CompareTo(tail.Through) <= 0)
            {
                var i = FirstAfter(tail.Events, after);
                var n = Math.Min(limit, tail.Events.Count - i);
                if (n == limit || (tail.AtHorizon && now - tail.ReadAt <= maxAge))
                {
                    Interlocked.Increment(ref _hits);
                    instruments?.OnTailRead(hit: true);
                    var events = tail.Events.GetRange(i, n);
                    return new GlobalPage(events, n == 0 ? after : events[^1].Checkpoint);
                }
            }
        }

        Interlocked.Increment(ref _misses);
        instruments?.OnTailRead(hit: false);
        var (page, horizon) = await horizonReader.ReadPartitionWithHorizonAsync(partition, after, limit, ct);
        Store(tail, after, page.Events, limit, horizon, now);
        return page;
    }

    /// <inheritdoc />
    public Task<GlobalCheckpoint?> ReadPartitionHeadAsync(int partition, CancellationToken ct = default) => inner.ReadPartitionHeadAsync(partition, ct);

    /// <inheritdoc />
    public Task<long> CountPartitionAfterAsync(int partition, GlobalCheckpoint after, long cap, CancellationToken ct = default) =>
        inner.CountPartitionAfterAsync(partition, after, cap, ct);

    /// <inheritdoc />
    public Task<GlobalCheckpoint> AdvanceCheckpointAsync(string name, GlobalCheckpoint checkpoint, CancellationToken ct = default) =>
        inner.AdvanceCheckpointAsync(name, checkpoint, ct);

    private void Store(Tail tail, GlobalCheckpoint after, IReadOnlyList<StoredEvent> events, int limit, ulong horizon, DateTimeOffset readAt)
    {
        var through = events.Count == 0 ? after : events[^1].Checkpoint;
        var atHorizon = events.Count < limit;
        if (atHorizon && horizon > 0)
        {
            // Every transaction below the horizon had ended before the page was read: the page holds all of theirs.
            var below = new GlobalCheckpoint(horizon - 1, long.MaxValue);
            through = below.CompareTo(through) > 0 ? below : through;
        }

        lock (tail.Gate)
        {
            if (tail.Holds && after.CompareTo(tail.From) >= 0 && after.CompareTo(tail.Through) <= 0)
            {
                var c = through.CompareTo(tail.Through);
                if (c == 0 && atHorizon && readAt > tail.ReadAt)
                {
                    // Nothing new, but nothing new as of a later read: the range's end is fresher.
                    tail.AtHorizon = true;
                    tail.ReadAt = readAt;
                }

                if (c <= 0)
                {
                    return; // the range already holds all of it (an older read that finished late, or nothing new)
                }

                // The read starts inside the range, so the two together are one range without a hole.
                for (var i = FirstAfter(events, tail.Through); i < events.Count; i++)
                {
                    tail.Events.Add(events[i]);
                }
            }
            else if (!tail.Holds || through.CompareTo(tail.Through) > 0)
            {
                // Not joined to the range (a reader ahead of it, or one far behind with a newer end): start over.
                tail.Events = [.. events];
                tail.From = after;
                tail.Holds = true;
            }
            else
            {
                return; // a reader behind the range: its old page is not kept
            }

            tail.Through = through;
            tail.AtHorizon = atHorizon;
            tail.ReadAt = readAt;
            var excess = tail.Events.Count - options.MaxEventsPerPartition;
            if (excess > 0)
            {
                tail.From = tail.Events[excess - 1].Checkpoint;
                tail.Events.RemoveRange(0, excess);
            }
        }
    }

    // The index of the first event after `at` (events in the gap-safe order).
    private static int FirstAfter(IReadOnlyList<StoredEvent> events, GlobalCheckpoint at)
    {
        var (lo, hi) = (0, events.Count);
        while (lo < hi)
        {
            var mid = (lo + hi) >>> 1;
            if (events[mid].Checkpoint.CompareTo(at) <= 0)
            {
                lo = mid + 1;
            }
            else
            {
                hi = mid;
            }
        }

        return lo;
    }

    private sealed class Tail
    {
        public readonly Lock Gate = new();

        public List<StoredEvent> Events { get; set; } = [];

        public GlobalCheckpoint From { get; set; }

        public GlobalCheckpoint Through { get; set; }

        public bool Holds { get; set; }

        // Through is a horizon (the last read was short), not only the last event of a full page.
        public bool AtHorizon { get; set; }

        public DateTimeOffset ReadAt { get; set; }
    }
}
