using System.Diagnostics;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using PumpFleet.EventStore;

namespace PumpFleet.Projections;

/// <summary>Outcome of one page.</summary>
/// <param name="Read">Events read from the log (all partitions).</param>
/// <param name="Applied">Events of this partition handed to the projection.</param>
/// <param name="Moved">The stored checkpoint was not where this runner started (a rebuild or another worker moved it): nothing was written.</param>
public readonly record struct PageResult(int Read, int Applied, bool Moved);

/// <summary>
/// Moves one projection partition along the global log. Each page is one transaction that locks the partition's
/// checkpoint row, checks it still holds the position the page was read from, applies the read-model changes and
/// advances the checkpoint: the effect of every event is applied exactly once, even with two workers on the same
/// partition, a crash between write and commit, or a rebuild racing a page.
/// </summary>
public sealed partial class ProjectionRunner(
    IEventReader reader, ICheckpointStore checkpoints, IEnumerable<IProjection> projections, IOptions<ProjectionOptions> options,
    ILogger<ProjectionRunner> logger)
{
    private readonly Dictionary<string, IProjection> _projections = projections.ToDictionary(p => p.Name, StringComparer.Ordinal);

    /// <summary>Runs between the read-model writes and the commit; tests use it to crash a page at the worst moment.</summary>
    public Func<string, CancellationToken, Task>? BeforeCommit { get; set; }

    /// <summary>Names of the registered projections.</summary>
    public IReadOnlyCollection<string> Names => _projections.Keys;

    /// <summary>The projection called <paramref name="name"/>.</summary>
    public IProjection Get(string name) =>
        _projections.TryGetValue(name, out var p) ? p : throw new KeyNotFoundException($"No projection '{name}'.");

    /// <summary>Processes pages until the log is exhausted or <paramref name="budget"/> has passed. Returns the events applied.</summary>
    public async Task<int> CatchUpAsync(string name, int partition, int count, TimeSpan budget, CancellationToken ct)
    {
        var sw = Stopwatch.StartNew();
        var applied = 0;
        while (!ct.IsCancellationRequested)
        {
            var r = await RunPageAsync(name, partition, count, ct);
            applied += r.Applied;
            if (r.Moved)
            {
                LogCheckpointMoved(name, partition, count);
                continue;
            }

            if (r.Read < options.Value.PageSize || sw.Elapsed >= budget)
            {
                break;
            }
        }

        return applied;
    }

    /// <summary>
    /// True when the checkpoint of (<paramref name="name"/>, partition) is at the newest committed event. A short page
    /// alone does not prove it: the gap-safe horizon is server-wide, so another database's open transaction can hold
    /// the reader back for a while.
    /// </summary>
    public async Task<bool> IsCaughtUpAsync(string name, int partition, int count, CancellationToken ct)
    {
        var checkpoint = await checkpoints.LoadCheckpointAsync(Partitioning.CheckpointName(name, partition, count), ct);
        return await reader.ReadHeadAsync(ct) is not { } head || checkpoint.CompareTo(head.Checkpoint) >= 0;
    }

    /// <summary>Reads one page after the stored checkpoint and applies it in one transaction.</summary>
    public async Task<PageResult> RunPageAsync(string name, int partition, int count, CancellationToken ct)
    {
        var projection = Get(name);
        var checkpointName = Partitioning.CheckpointName(name, partition, count);
        var from = await checkpoints.LoadCheckpointAsync(checkpointName, ct);
        var page = await reader.ReadAllAsync(from, options.Value.PageSize, ct);
        if (page.Events.Count == 0)
        {
            return new PageResult(0, 0, false);
        }

        var mine = count == 1
            ? page.Events
            : page.Events.Where(e => Partitioning.PartitionOf(e.StreamId, count) == partition).ToList();

        // The event store holds the checkpoint row for this transaction; it must still be where the page was read from.
        await using var held = await checkpoints.LockAsync(checkpointName, ct);
        if (held.Position != from)
        {
            await held.RollbackAsync(ct);
            return new PageResult(page.Events.Count, 0, true);
        }

        if (mine.Count > 0)
        {
            await projection.ApplyAsync(held.Connection, held.Transaction, mine, ct);
        }

        await held.AdvanceAsync(page.Next, ct);
        await ProjectionProgressStore.RecordPageAsync(held.Connection, held.Transaction, checkpointName, name, page.Events[^1].ReceivedAt, mine.Count, ct);
        if (BeforeCommit is { } hook)
        {
            await hook(checkpointName, ct);
        }

        await held.CommitAsync(ct);
        return new PageResult(page.Events.Count, mine.Count, false);
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Projection {Name} partition {Partition}/{Count}: checkpoint moved under the page (rebuild or a second worker); re-reading")]
    private partial void LogCheckpointMoved(string name, int partition, int count);
}
