using System.Collections.Concurrent;
using System.Diagnostics;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Npgsql;
using PumpFleet.EventStore;
using PumpFleet.EventStore.Log;

namespace PumpFleet.Projections;

/// <summary>Outcome of one page.</summary>
/// <param name="Read">Events read from the log partition.</param>
/// <param name="Applied">Events handed to the projection and committed.</param>
/// <param name="Moved">The stored checkpoint was not where this runner started (a rebuild or another worker moved it): nothing was written.</param>
/// <param name="Failed">The projection threw; the page rolled back and waits for its backoff (a dependency fault is thrown instead).</param>
/// <param name="Parked">Events parked by this page (the projection kept failing on them; the rest were applied).</param>
/// <param name="ShortReadAhead">The page was short and came from the read-ahead, which may have stopped at the horizon held back by this runner's own open page: the partition may hold more.</param>
public readonly record struct PageResult(int Read, int Applied, bool Moved, bool Failed = false, int Parked = 0, bool ShortReadAhead = false);

/// <summary>
/// Moves one projection along the log partitions (migration 007's <c>log_partition</c>), one checkpoint per
/// (projection, log partition), each read on its own index range in the gap-safe <c>(xid8, position)</c> order. Each
/// page is one transaction that locks the partition's checkpoint row, checks it still holds the position the page was
/// read from, applies the read-model changes and advances the checkpoint: the effect of every event is applied
/// exactly once, even with two workers on the same partition, a crash between write and commit, or a rebuild racing a
/// page. A projection that throws on a page is retried with a doubling backoff; after
/// <see cref="ProjectionOptions.MaxAttempts"/> the page is applied event by event and the events that still throw are
/// parked (<see cref="ParkedEventStore"/>) in the same transaction that moves the checkpoint past them, so the
/// partition never stalls and nothing is skipped silently.
/// </summary>
public sealed partial class ProjectionRunner(
    ILogPartitionReader partitions, ICheckpointStore checkpoints, IEnumerable<IProjection> projections, IOptions<ProjectionOptions> options,
    ParkedEventStore parkedEvents, ProjectionInstruments instruments, PageStageTimes stages, TimeProvider time, ILogger<ProjectionRunner> logger)
{
    private readonly Dictionary<string, IProjection> _projections = projections.ToDictionary(p => p.Name, StringComparer.Ordinal);

    // Per (projection, log partition): the position a failing page starts at, its failed attempts and when to try next.
    private readonly ConcurrentDictionary<string, Failure> _failures = new(StringComparer.Ordinal);

    // Per (projection, log partition): where this runner's last commit left the checkpoint. Only a hint that saves a
    // read per page: the page's transaction still locks the stored checkpoint and refuses a page read from anywhere
    // else (a rebuild, another worker), and then the hint is dropped.
    private readonly ConcurrentDictionary<string, GlobalCheckpoint> _committed = new(StringComparer.Ordinal);

    // Per (projection, log partition): whether this runner's last committed page there was full (see StartReadAhead).
    private readonly ConcurrentDictionary<string, bool> _lastPageFull = new(StringComparer.Ordinal);

    // Per (projection, log partition): the next page, read while the current one is applied (see RunPageAsync).
    private readonly ConcurrentDictionary<string, Prefetch> _prefetched = new(StringComparer.Ordinal);

    // Combined live pages committed since start (tests check the combined way is taken at all).
    private long _combinedPages;

    /// <summary>Combined live pages (<see cref="ProjectionOptions.CombineLivePartitions"/>) committed by this runner since start.</summary>
    internal long CombinedPagesCommitted => Interlocked.Read(ref _combinedPages);

    /// <summary>Runs between the read-model writes and the commit; tests use it to crash a page at the worst moment.</summary>
    public Func<string, CancellationToken, Task>? BeforeCommit { get; set; }

    /// <summary>Where the time of this runner's pages goes, stage by stage (always kept: a few timestamps per page).</summary>
    public PageStageTimes Stages => stages;

    /// <summary>Names of the registered projections.</summary>
    public IReadOnlyCollection<string> Names => _projections.Keys;

    /// <summary>The projection called <paramref name="name"/>.</summary>
    public IProjection Get(string name) =>
        _projections.TryGetValue(name, out var p) ? p : throw new KeyNotFoundException($"No projection '{name}'.");

    /// <summary>
    /// Processes pages of the log partitions of projection partition <paramref name="partition"/> of
    /// <paramref name="count"/> (<see cref="Partitioning.LogPartitionsOf"/>) until each is exhausted or
    /// <paramref name="budget"/> has passed. Returns the events applied.
    /// </summary>
    public async Task<int> CatchUpAsync(string name, int partition, int count, TimeSpan budget, CancellationToken ct)
    {
        var sw = Stopwatch.StartNew();
        var applied = 0;
        var pending = Partitioning.LogPartitionsOf(partition, count).ToList();
        var rechecked = new HashSet<int>();
        applied += await ApplyRetriesAsync(name, pending, ct);
        if (options.Value.CombineLivePartitions && pending.Count > 1)
        {
            // The live partitions' short pages in one transaction, the idle ones checked in one query; what is left
            // (catching up, moved, failing) goes the one-partition way below.
            var (combined, finished) = await RunLivePagesAsync(name, pending, ct);
            applied += combined;
            pending.RemoveAll(finished.Contains);
        }

        var o = options.Value;
        // Round robin over the log partitions, so one busy partition does not starve the others within the budget.
        while (pending.Count > 0 && !ct.IsCancellationRequested)
        {
            var round = pending.ToArray();
            for (var i = 0; i < round.Length; i++)
            {
                var q = round[i];
                // The next partition's page is read while this one is applied (see StartReadAhead).
                StartReadAhead(name, round[(i + 1) % round.Length], q, ct);
                var r = await RunPageAsync(name, q, ct);
                applied += r.Applied;
                if (r.Moved)
                {
                    LogCheckpointMoved(name, q);
                    continue;
                }

                // A short page that came from the read-ahead is not proof of the end (see RunPageAsync): one more read,
                // once per partition and catch-up (a read-ahead of every page, ReadAheadOnlyWhenFull off, would otherwise
                // keep a live partition in the round until the budget ran out).
                if (r.Failed || (r.Read < o.PageSize && !(r.ShortReadAhead && rechecked.Add(q))))
                {
                    pending.Remove(q);
                }
            }

            if (sw.Elapsed >= budget)
            {
                break;
            }
        }

        return applied;
    }

    /// <summary>
    /// True when every log partition of projection partition <paramref name="partition"/> of <paramref name="count"/>
    /// has its checkpoint at that partition's newest committed event. A short page alone does not prove it: the
    /// gap-safe horizon is server-wide, so another database's open transaction can hold the reader back for a while.
    /// </summary>
    public async Task<bool> IsCaughtUpAsync(string name, int partition, int count, CancellationToken ct)
    {
        foreach (var q in Partitioning.LogPartitionsOf(partition, count))
        {
            var checkpoint = await checkpoints.LoadCheckpointAsync(Partitioning.CheckpointName(name, q), ct);
            if (await partitions.ReadPartitionHeadAsync(q, ct) is { } head && checkpoint.CompareTo(head) < 0)
            {
                return false;
            }
        }

        return true;
    }

    /// <summary>Reads one page of log partition <paramref name="logPartition"/> after the stored checkpoint and applies it in one transaction.</summary>
    public async Task<PageResult> RunPageAsync(string name, int logPartition, CancellationToken ct)
    {
        var projection = Get(name);
        var checkpointName = Partitioning.CheckpointName(name, logPartition);
        var o = options.Value;
        var t = Stopwatch.GetTimestamp();
        var hinted = _committed.TryGetValue(checkpointName, out var c);
        Prefetched? ahead = null;
        if (_prefetched.TryRemove(checkpointName, out var prefetch))
        {
            // Started by this runner (ReadAheadAsync, which never throws) and awaited once; no synchronisation context here.
#pragma warning disable VSTHRD003
            ahead = await prefetch.Read;
#pragma warning restore VSTHRD003
        }

        // Without a hint, a read-ahead that loaded the stored checkpoint itself (StartReadAhead) saves that round trip;
        // either way the page's transaction checks the checkpoint again under its lock.
        var from = hinted ? c : prefetch is { From: null } && ahead is not null ? ahead.From : await checkpoints.LoadCheckpointAsync(checkpointName, ct);
        var failure = _failures.TryGetValue(checkpointName, out var f) && f.From == from ? f : null;
        if (failure is not null && time.GetUtcNow() < failure.NextAttemptAt)
        {
            return new PageResult(0, 0, false, Failed: true);
        }

        // The page read ahead, when it was read from here and is full (or, ReadAheadEveryPage, short too); otherwise read now.
        var size = o.PageSize;
        var page = ahead is not null && ahead.From == from && (ahead.Page.Events.Count >= size || o.ReadAheadEveryPage) ? ahead.Page : null;
        var shortAhead = page is not null && page.Events.Count < size;
        page ??= await partitions.ReadPartitionAsync(logPartition, from, size, ct);

        t = stages.Add(PageStage.LogWait, t);
        if (page.Events.Count == 0)
        {
            // Nothing after this runner's own last commit; but a rebuild may have put the stored checkpoint back, and
            // an empty page never reaches the checkpoint check: look at the stored one (a key lookup), and read the log
            // again only when it is somewhere else.
            if (hinted)
            {
                _lastPageFull[checkpointName] = false;
                if (await checkpoints.LoadCheckpointAsync(checkpointName, ct) == from)
                {
                    return new PageResult(0, 0, false, ShortReadAhead: shortAhead);
                }

                _committed.TryRemove(checkpointName, out _);
                return await RunPageAsync(name, logPartition, ct);
            }

            // Nothing in the partition yet: remembered as a short page, so it is not read ahead again (StartReadAhead).
            _lastPageFull[checkpointName] = false;
            return new PageResult(0, 0, false, ShortReadAhead: shortAhead);
        }

        // The read-model write of these events, linked to the traces that ingested them (ProjectionTracing).
        using var span = ProjectionTracing.StartPage(name, logPartition, page.Events);

        // The event store holds the checkpoint row for this transaction; it must still be where the page was read from.
        // A batched projection's read of the page's rows rides in the lock's round trip (LoadWithLock).
        var batched = projection as IBatchedPageProjection;
        var load = o.LoadWithLock ? batched?.Load(page.Events) : null;
        await using var held = load is null
            ? await checkpoints.LockAsync(checkpointName, ct)
            : await checkpoints.LockAsync(checkpointName, load.Commands, load.ReadAsync, ct);
        t = stages.Add(PageStage.Lock, t);
        if (held.Position != from)
        {
            await held.RollbackAsync(ct);
            _failures.TryRemove(checkpointName, out _);
            _committed.TryRemove(checkpointName, out _);
            _prefetched.TryRemove(checkpointName, out _);
            return new PageResult(page.Events.Count, 0, true);
        }

        var parked = 0;
        var committed = false;
        if (failure is not null && failure.Attempts >= o.MaxAttempts)
        {
            parked = await ApplyIsolatingAsync(projection, held, logPartition, page.Events, failure.Attempts, ct);
        }
        else
        {
            var tailed = o.CommitWithWrites ? batched : null;
            if (tailed is not null && BeforeCommit is { } hook)
            {
                // The writes, the checkpoint, the progress row and the commit take one round trip: the test hook runs
                // before it (outside the projection's fault handling, as it runs before the commit otherwise).
                await hook(checkpointName, ct);
            }

            try
            {
                if (tailed is not null)
                {
                    var tail = new PageTail(Tail(held, checkpointName, name, page, 0));
                    await tailed.ApplyAsync(held.Connection, held.Transaction, page.Events, load, tail, ct);
                    // The advance found its row only if the projection sent the tail; otherwise nothing committed (the
                    // transaction is still open and rolls back on disposal), which is the projection's fault.
                    if (tail.Commands[0].RecordsAffected != 1)
                    {
                        throw new InvalidOperationException($"Projection '{name}' returned without sending the page's tail (checkpoint and COMMIT).");
                    }

                    committed = true;
                }
                else if (batched is not null)
                {
                    await batched.ApplyAsync(held.Connection, held.Transaction, page.Events, load, PageTail.None, ct);
                }
                else
                {
                    await projection.ApplyAsync(held.Connection, held.Transaction, page.Events, ct);
                }
            }
            catch (Exception e) when (IsProjectionFault(e, ct))
            {
                // With the tail in the projection's batch, the transaction is rolled back by its disposal: an error in the
                // batch skipped the COMMIT (the transaction is aborted), and a failing COMMIT has already ended it.
                if (tailed is null)
                {
                    await held.RollbackAsync(CancellationToken.None);
                }

                var attempts = (failure?.Attempts ?? 0) + 1;
                var delay = Backoff(attempts);
                _failures[checkpointName] = new Failure(from, attempts, time.GetUtcNow() + delay);
                instruments.PageFailed(name);
                LogPageFailed(e, name, logPartition, attempts, o.MaxAttempts, delay);
                return new PageResult(page.Events.Count, 0, false, Failed: true);
            }

            t = stages.Add(PageStage.Apply, t);
        }

        if (!committed)
        {
            if (o.CommitWithWrites)
            {
                // The checkpoint, the progress row, the commit mode and the commit in one round trip.
                if (BeforeCommit is { } hook)
                {
                    await hook(checkpointName, ct);
                }

                await using var batch = new NpgsqlBatch(held.Connection, held.Transaction);
                foreach (var cmd in Tail(held, checkpointName, name, page, parked))
                {
                    batch.BatchCommands.Add(cmd);
                }

                await batch.ExecuteNonQueryAsync(ct);
                t = stages.Add(PageStage.Commit, t);
            }
            else
            {
                // The checkpoint, the progress row and the commit mode in one round trip; the commit in another.
                await held.AdvanceAsync(page.Next,
                    ProjectionProgressStore.RecordPageCommands(checkpointName, name, page.Events[^1].ReceivedAt, page.Events.Count - parked, o.SynchronousCommit), ct);
                t = stages.Add(PageStage.Advance, t);
                if (BeforeCommit is { } hook)
                {
                    await hook(checkpointName, ct);
                }

                await held.CommitAsync(ct);
                stages.Add(PageStage.Commit, t);
            }
        }

        stages.Page();
        _committed[checkpointName] = page.Next;
        _lastPageFull[checkpointName] = page.Events.Count >= o.PageSize;
        _failures.TryRemove(checkpointName, out _);
        if (parked > 0)
        {
            instruments.Parked(name, parked);
        }

        return new PageResult(page.Events.Count, page.Events.Count - parked, false, Parked: parked, ShortReadAhead: shortAhead);
    }

    /// <summary>
    /// One poll of a worker's live log partitions (<see cref="ProjectionOptions.CombineLivePartitions"/>): those where
    /// this runner committed last and that page was short, with no failure pending and no read-ahead, are read once each
    /// from this runner's hint; the short pages are applied together in one transaction per
    /// <see cref="ProjectionOptions.CombinedPageMaxEvents"/> events, and the empty ones have their stored checkpoints
    /// checked in one query (a rebuild or another worker may have moved them, as <see cref="RunPageAsync"/> checks one by
    /// one). Returns the events applied and the partitions this poll is done with; every other partition goes the
    /// one-partition way (a full page is handed over as its read-ahead, so it is not read twice).
    /// </summary>
    private async Task<(int Applied, HashSet<int> Finished)> RunLivePagesAsync(string name, IReadOnlyList<int> logPartitions, CancellationToken ct)
    {
        var o = options.Value;
        var finished = new HashSet<int>();
        var live = new List<(int Partition, string CheckpointName, GlobalCheckpoint From)>();
        foreach (var q in logPartitions)
        {
            var checkpointName = Partitioning.CheckpointName(name, q);
            if (_committed.TryGetValue(checkpointName, out var from) && _lastPageFull.TryGetValue(checkpointName, out var full) && !full
                && !_failures.ContainsKey(checkpointName) && !_prefetched.ContainsKey(checkpointName))
            {
                live.Add((q, checkpointName, from));
            }
        }

        if (live.Count < 2)
        {
            return (0, finished);
        }

        var t = Stopwatch.GetTimestamp();
        var pages = new List<LivePage>();
        var idle = new List<(int Partition, string CheckpointName, GlobalCheckpoint From)>();
        foreach (var (q, checkpointName, from) in live)
        {
            var page = await partitions.ReadPartitionAsync(q, from, o.PageSize, ct);
            if (page.Events.Count == 0)
            {
                idle.Add((q, checkpointName, from));
            }
            else if (page.Events.Count >= o.PageSize)
            {
                // Catching up again: the one-partition way takes the partition from here, starting with this page.
                _prefetched[checkpointName] = new Prefetch(from, Task.FromResult<Prefetched?>(new Prefetched(from, page)));
            }
            else
            {
                pages.Add(new LivePage(q, checkpointName, from, page));
            }
        }

        stages.Add(PageStage.LogWait, t);
        if (idle.Count > 0)
        {
            // Nothing after this runner's own last commit: done, unless the stored checkpoint is somewhere else (then the
            // one-partition way reads from there).
            var stored = await checkpoints.LoadCheckpointsAsync([.. idle.Select(i => i.CheckpointName)], ct);
            foreach (var (q, checkpointName, from) in idle)
            {
                if (stored[checkpointName] == from)
                {
                    finished.Add(q);
                }
                else
                {
                    _committed.TryRemove(checkpointName, out _);
                }
            }
        }

        var applied = 0;
        var group = new List<LivePage>();
        var events = 0;
        foreach (var page in pages)
        {
            if (group.Count > 0 && events + page.Page.Events.Count > o.CombinedPageMaxEvents)
            {
                applied += await RunCombinedPageAsync(name, group, finished, ct);
                group = [];
                events = 0;
            }

            group.Add(page);
            events += page.Page.Events.Count;
        }

        if (group.Count > 0)
        {
            applied += await RunCombinedPageAsync(name, group, finished, ct);
        }

        return (applied, finished);
    }

    // The short pages of several log partitions in one transaction: their checkpoints locked together (in name order)
    // and each checked against where its page was read from, the projection applying all their events (each
    // partition's in its log order; a pump's events are all in its own partition), every checkpoint and progress row
    // moved in one statement each, and the commit, in the projection's last batch where it takes the tail. The pages
    // are the ones the one-partition way would have applied one by one in this poll, so nothing is applied that it
    // would not have applied, and the checkpoint check under the lock keeps the effect exactly once. A moved checkpoint
    // or a projection fault rolls the whole page back and leaves its partitions to the one-partition way, which
    // re-reads them and retries, backs off and parks the failing one as ever. Returns the events applied.
    private async Task<int> RunCombinedPageAsync(string name, List<LivePage> group, HashSet<int> finished, CancellationToken ct)
    {
        var projection = Get(name);
        var o = options.Value;
        var t = Stopwatch.GetTimestamp();
        IReadOnlyList<StoredEvent> events = group.Count == 1 ? group[0].Page.Events : [.. group.SelectMany(g => g.Page.Events)];
        using var span = ProjectionTracing.StartPage(name, group.Count == 1 ? group[0].Partition : -1, events);
        var batched = projection as IBatchedPageProjection;
        // Every live page is read from this runner's hint (its own last commit); the lock checks each is still there.
        var load = o.LoadWithLock ? batched?.Load(events) : null;
        string[] names = [.. group.Select(g => g.CheckpointName)];
        await using var held = load is null
            ? await checkpoints.LockManyAsync(names, [], static (_, _) => Task.CompletedTask, ct)
            : await checkpoints.LockManyAsync(names, load.Commands, load.ReadAsync, ct);
        t = stages.Add(PageStage.Lock, t);
        var moved = group.Where(g => held.Positions[g.CheckpointName] != g.From).ToList();
        if (moved.Count > 0)
        {
            await held.RollbackAsync(ct);
            foreach (var g in moved)
            {
                _committed.TryRemove(g.CheckpointName, out _);
                LogCheckpointMoved(name, g.Partition);
            }

            return 0;
        }

        var tailed = o.CommitWithWrites ? batched : null;
        var committed = false;
        if (tailed is not null && BeforeCommit is { } tailHook)
        {
            foreach (var n in names)
            {
                await tailHook(n, ct);
            }
        }

        try
        {
            if (tailed is not null)
            {
                var tail = new PageTail(CombinedTail(held, name, group));
                await tailed.ApplyAsync(held.Connection, held.Transaction, events, load, tail, ct);
                if (tail.Commands[0].RecordsAffected != group.Count)
                {
                    throw new InvalidOperationException($"Projection '{name}' returned without sending the page's tail (checkpoints and COMMIT).");
                }

                committed = true;
            }
            else if (batched is not null)
            {
                await batched.ApplyAsync(held.Connection, held.Transaction, events, load, PageTail.None, ct);
            }
            else
            {
                await projection.ApplyAsync(held.Connection, held.Transaction, events, ct);
            }
        }
        catch (Exception e) when (IsProjectionFault(e, ct))
        {
            if (tailed is null)
            {
                await held.RollbackAsync(CancellationToken.None);
            }

            // Not counted as a failed page and not backed off: each partition's page runs again on its own right after
            // this, and the one that fails there is counted, retried and parked as ever.
            LogCombinedPageFailed(e, name, group.Count);
            return 0;
        }

        t = stages.Add(PageStage.Apply, t);
        if (!committed)
        {
            if (BeforeCommit is { } hook)
            {
                foreach (var n in names)
                {
                    await hook(n, ct);
                }
            }

            await using var batch = new NpgsqlBatch(held.Connection, held.Transaction);
            foreach (var cmd in CombinedTail(held, name, group))
            {
                batch.BatchCommands.Add(cmd);
            }

            await batch.ExecuteNonQueryAsync(ct);
            stages.Add(PageStage.Commit, t);
        }

        stages.Page();
        Interlocked.Increment(ref _combinedPages);
        foreach (var g in group)
        {
            _committed[g.CheckpointName] = g.Page.Next;
            _lastPageFull[g.CheckpointName] = false;
            _failures.TryRemove(g.CheckpointName, out _);
            finished.Add(g.Partition);
        }

        return events.Count;
    }

    // A combined page's tail: every checkpoint in one statement, every progress row in one, the commit mode and COMMIT.
    private List<NpgsqlBatchCommand> CombinedTail(CheckpointTransaction held, string name, List<LivePage> group)
    {
        var tail = new List<NpgsqlBatchCommand> { held.AdvanceManyCommand([.. group.Select(g => (g.CheckpointName, g.Page.Next))]) };
        tail.AddRange(ProjectionProgressStore.RecordPagesCommands(
            name, [.. group.Select(g => (g.CheckpointName, g.Page.Events[^1].ReceivedAt, (long)g.Page.Events.Count))], options.Value.SynchronousCommit));
        tail.Add(new NpgsqlBatchCommand("COMMIT"));
        return tail;
    }

    // The statements that end a page: the checkpoint advance, the progress row (with the commit mode) and COMMIT. Sent
    // in one batch, an error in any statement before COMMIT skips the rest (PostgreSQL ignores a batch after its first
    // error until the batch's Sync), so the page's writes and its checkpoint commit together or not at all.
    private List<NpgsqlBatchCommand> Tail(CheckpointTransaction held, string checkpointName, string name, GlobalPage page, int parked)
    {
        var tail = new List<NpgsqlBatchCommand> { held.AdvanceCommand(page.Next) };
        tail.AddRange(ProjectionProgressStore.RecordPageCommands(checkpointName, name, page.Events[^1].ReceivedAt, page.Events.Count - parked, options.Value.SynchronousCommit));
        tail.Add(new NpgsqlBatchCommand("COMMIT"));
        return tail;
    }

    // Reads ahead the page of log partition `next` that comes after this runner's last commit there, unless that is the
    // partition about to run (nothing to overlap), or (ReadAheadOnlyWhenFull) its last page was short: a live
    // partition's next page is short too, so reading ahead there only doubled the reads of every poll; a partition that
    // is catching up has full pages. Where this runner has not committed yet (its first page there), the read-ahead
    // loads the stored checkpoint itself (ReadAheadEveryPage; before, that page was read on its own path). The next
    // partition's page is read while this one is applied (one read ahead per worker at a time), so the log read of one
    // page overlaps the fold, the writes and the commit of the page before it. Reading ahead changes nothing of the
    // gap-safe order: the page is read from the position the checkpoint is expected at, and it is used only if the
    // checkpoint is there when its turn comes (checked again under the lock).
    private void StartReadAhead(string name, int next, int current, CancellationToken ct)
    {
        var checkpointName = Partitioning.CheckpointName(name, next);
        // One read-ahead per partition: an earlier one not yet used (its partition left the round) is used or dropped
        // by that partition's next page, which compares its position with the checkpoint's.
        if (next == current || _prefetched.ContainsKey(checkpointName))
        {
            return;
        }

        if (!_committed.TryGetValue(checkpointName, out var from))
        {
            // Not for a partition this runner found empty (it has no hint there until its first commit).
            if (options.Value.ReadAheadEveryPage && !(options.Value.ReadAheadOnlyWhenFull && _lastPageFull.TryGetValue(checkpointName, out var full) && !full))
            {
                _prefetched[checkpointName] = new Prefetch(null, ReadAheadAsync(checkpointName, next, null, options.Value.PageSize, ct));
            }

            return;
        }

        if (options.Value.ReadAheadOnlyWhenFull && !_lastPageFull.GetValueOrDefault(checkpointName))
        {
            return;
        }

        _prefetched[checkpointName] = new Prefetch(from, ReadAheadAsync(checkpointName, next, from, options.Value.PageSize, ct));
    }

    // Never throws: a failed or cancelled read-ahead is simply read again when its page is due.
    private async Task<Prefetched?> ReadAheadAsync(string checkpointName, int logPartition, GlobalCheckpoint? from, int size, CancellationToken ct)
    {
        try
        {
            var at = from ?? await checkpoints.LoadCheckpointAsync(checkpointName, ct);
            return new Prefetched(at, await partitions.ReadPartitionAsync(logPartition, at, size, ct));
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            return null;
        }
    }

    // The page kept failing as a whole: each event gets its own savepoint, and an event that still throws is rolled
    // back to its savepoint and parked with the error, in the page's transaction (so parking and moving the checkpoint
    // past it commit together). Events after it, of its pump too, are applied.
    private async Task<int> ApplyIsolatingAsync(IProjection projection, CheckpointTransaction held, int logPartition, IReadOnlyList<StoredEvent> events, int attempts, CancellationToken ct)
    {
        var parked = 0;
        foreach (var e in events)
        {
            await held.Transaction.SaveAsync("pf_event", ct);
            try
            {
                await projection.ApplyAsync(held.Connection, held.Transaction, [e], ct);
                await held.Transaction.ReleaseAsync("pf_event", ct);
            }
            catch (Exception ex) when (IsProjectionFault(ex, ct))
            {
                await held.Transaction.RollbackAsync("pf_event", ct);
                await ParkedEventStore.ParkAsync(held.Connection, held.Transaction, projection.Name, logPartition, e, Reason(ex), attempts, ct);
                LogParked(ex, projection.Name, logPartition, e.StreamId, e.Version, e.Type);
                parked++;
            }
        }

        return parked;
    }

    // Parked events whose retry was asked for (API or command line) are applied by the worker that owns their
    // partition, holding the partition's checkpoint so no page of the same partition runs meanwhile.
    private async Task<int> ApplyRetriesAsync(string name, IReadOnlyList<int> logPartitions, CancellationToken ct)
    {
        var projection = Get(name);
        var applied = 0;
        foreach (var (id, logPartition, streamId, version) in await parkedEvents.RetryRequestedAsync(name, logPartitions, ct))
        {
            var e = await parkedEvents.LoadEventAsync(streamId, version, ct);
            await using var held = await checkpoints.LockAsync(Partitioning.CheckpointName(name, logPartition), ct);
            if (e is null)
            {
                await ParkedEventStore.FinishRetryAsync(held.Connection, held.Transaction, id, "the event is no longer in the log", ct);
                await held.CommitAsync(ct);
                continue;
            }

            await held.Transaction.SaveAsync("pf_retry", ct);
            try
            {
                await projection.ApplyAsync(held.Connection, held.Transaction, [e], ct);
                await ParkedEventStore.FinishRetryAsync(held.Connection, held.Transaction, id, null, ct);
                applied++;
            }
            catch (Exception ex) when (IsProjectionFault(ex, ct))
            {
                await held.Transaction.RollbackAsync("pf_retry", ct);
                await ParkedEventStore.FinishRetryAsync(held.Connection, held.Transaction, id, Reason(ex), ct);
                LogRetryFailed(ex, name, streamId, version);
            }

            await held.CommitAsync(ct);
        }

        return applied;
    }

    private TimeSpan Backoff(int attempts)
    {
        var first = options.Value.RetryBackoff;
        var ticks = first.Ticks * Math.Pow(2, Math.Min(attempts - 1, 20));
        return TimeSpan.FromTicks((long)Math.Min(ticks, TimeSpan.FromMinutes(1).Ticks));
    }

    /// <summary>
    /// True for a failure of the projection's own code or of the data it wrote (a constraint, a bad value): those are
    /// retried and finally parked. A dependency fault (the database unreachable or restarting, a deadlock, a timeout,
    /// the worker shutting down) is not the event's fault: it is thrown, the page rolls back and is retried for as long
    /// as it takes, and nothing is parked.
    /// </summary>
    internal static bool IsProjectionFault(Exception e, CancellationToken ct)
    {
        if (ct.IsCancellationRequested || e is OperationCanceledException or TimeoutException or OutOfMemoryException
            or System.IO.IOException or System.Net.Sockets.SocketException)
        {
            return false;
        }

        return e switch
        {
            // 08 connection, 40 serialization/deadlock, 53 resources, 57 operator intervention (shutdown), 58 system, XX internal.
            PostgresException pg => pg.SqlState[..2] is not ("08" or "40" or "53" or "57" or "58" or "XX"),
            NpgsqlException => false,
            _ => true,
        };
    }

    private static string Reason(Exception e)
    {
        var reason = $"{e.GetType().Name}: {e.Message}";
        return reason.Length <= 2000 ? reason : reason[..2000];
    }

    private sealed record Failure(GlobalCheckpoint From, int Attempts, DateTimeOffset NextAttemptAt);

    // A read-ahead: From is the position it was started from (null: the stored checkpoint, loaded by the read itself).
    private sealed record Prefetch(GlobalCheckpoint? From, Task<Prefetched?> Read);

    private sealed record Prefetched(GlobalCheckpoint From, GlobalPage Page);

    // A live partition's short page of this poll, read from this runner's hint.
    private sealed record LivePage(int Partition, string CheckpointName, GlobalCheckpoint From, GlobalPage Page);

    [LoggerMessage(Level = LogLevel.Information, Message = "Projection {Name} log partition {Partition}: checkpoint moved under the page (rebuild or a second worker); re-reading")]
    private partial void LogCheckpointMoved(string name, int partition);

    [LoggerMessage(Level = LogLevel.Information, Message = "Projection {Name}: the projection failed on a combined page of {Partitions} log partitions; applying them one by one")]
    private partial void LogCombinedPageFailed(Exception e, string name, int partitions);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Projection {Name} log partition {Partition}: the projection failed on a page (attempt {Attempt} of {MaxAttempts}); retrying in {Delay}")]
    private partial void LogPageFailed(Exception e, string name, int partition, int attempt, int maxAttempts, TimeSpan delay);

    [LoggerMessage(Level = LogLevel.Error, Message = "Projection {Name} log partition {Partition}: parked event {StreamId} v{Version} ({Type}); the partition goes on")]
    private partial void LogParked(Exception e, string name, int partition, string streamId, long version, string type);

    [LoggerMessage(Level = LogLevel.Error, Message = "Projection {Name}: retry of parked event {StreamId} v{Version} failed again; it stays parked")]
    private partial void LogRetryFailed(Exception e, string name, string streamId, long version);
}
