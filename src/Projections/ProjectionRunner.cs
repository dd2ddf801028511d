using System.Diagnostics;
using System.Globalization;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Npgsql;
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
    NpgsqlDataSource dataSource, IEventStore store, IEnumerable<IProjection> projections, IOptions<ProjectionOptions> options,
    ILogger<ProjectionRunner> logger)
{
    private readonly Dictionary<string, IProjection> _projections = projections.ToDictionary(p => p.Name, StringComparer.Ordinal);

    private const int IdleInTransactionTimeoutMs = 30_000;

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
        var checkpoint = await store.LoadCheckpointAsync(Partitioning.CheckpointName(name, partition, count), ct);
        await using var cmd = dataSource.CreateCommand(
            "SELECT transaction_id::text AS tx, global_position FROM pf_events ORDER BY transaction_id DESC, global_position DESC LIMIT 1");
        await using var r = await cmd.ExecuteReaderAsync(ct);
        if (!await r.ReadAsync(ct))
        {
            return true;
        }

        var last = new GlobalCheckpoint(ulong.Parse(r.GetString(0), System.Globalization.CultureInfo.InvariantCulture), r.GetInt64(1));
        return checkpoint.CompareTo(last) >= 0;
    }

    /// <summary>Reads one page after the stored checkpoint and applies it in one transaction.</summary>
    public async Task<PageResult> RunPageAsync(string name, int partition, int count, CancellationToken ct)
    {
        var projection = Get(name);
        var checkpointName = Partitioning.CheckpointName(name, partition, count);
        var from = await store.LoadCheckpointAsync(checkpointName, ct);
        var page = await store.ReadAllAsync(from, options.Value.PageSize, ct);
        if (page.Events.Count == 0)
        {
            return new PageResult(0, 0, false);
        }

        var mine = count == 1
            ? page.Events
            : page.Events.Where(e => Partitioning.PartitionOf(e.StreamId, count) == partition).ToList();

        await using var conn = await dataSource.OpenConnectionAsync(ct);
        await using var tx = await conn.BeginTransactionAsync(ct);
        var stored = await LockCheckpointAsync(conn, tx, checkpointName, ct);
        if (stored != from)
        {
            await tx.RollbackAsync(ct);
            return new PageResult(page.Events.Count, 0, true);
        }

        if (mine.Count > 0)
        {
            await projection.ApplyAsync(conn, tx, mine, ct);
        }

        await using (var cmd = new NpgsqlCommand("""
            UPDATE pf_checkpoints SET transaction_id = @tx::text::xid8, global_position = @pos, updated_at = now() WHERE name = @name;
            INSERT INTO pf_projection_progress (name, projection, last_received_at, events_processed, updated_at)
            VALUES (@name, @projection, @received, @count, now())
            ON CONFLICT (name) DO UPDATE SET last_received_at = excluded.last_received_at,
                events_processed = pf_projection_progress.events_processed + excluded.events_processed, updated_at = now();
            """, conn, tx))
        {
            cmd.Parameters.AddWithValue("name", checkpointName);
            cmd.Parameters.AddWithValue("tx", page.Next.TransactionId.ToString(CultureInfo.InvariantCulture));
            cmd.Parameters.AddWithValue("pos", page.Next.Position);
            cmd.Parameters.AddWithValue("projection", name);
            cmd.Parameters.AddWithValue("received", page.Events[^1].ReceivedAt);
            cmd.Parameters.AddWithValue("count", (long)mine.Count);
            await cmd.ExecuteNonQueryAsync(ct);
        }

        if (BeforeCommit is { } hook)
        {
            await hook(checkpointName, ct);
        }

        await tx.CommitAsync(ct);
        return new PageResult(page.Events.Count, mine.Count, false);
    }

    // INSERT .. ON CONFLICT DO NOTHING makes the row exist (a concurrent inserter waits on the unique index), and
    // FOR UPDATE then reads the newest committed position, so two workers can never both apply the same page.
    private static async Task<GlobalCheckpoint> LockCheckpointAsync(NpgsqlConnection conn, NpgsqlTransaction tx, string name, CancellationToken ct)
    {
        // The global reader stops below the oldest open transaction on the whole server, so a worker that hangs inside
        // a page (a frozen process whose socket stays open) would stall every projection: PostgreSQL ends such a
        // session after the timeout and the page is retried by the next activation.
        await using (var insert = new NpgsqlCommand($"""
            SET LOCAL idle_in_transaction_session_timeout = '{IdleInTransactionTimeoutMs}ms';
            INSERT INTO pf_checkpoints (name, transaction_id, global_position) VALUES (@name, '0'::xid8, 0) ON CONFLICT (name) DO NOTHING;
            """, conn, tx))
        {
            insert.Parameters.AddWithValue("name", name);
            await insert.ExecuteNonQueryAsync(ct);
        }

        await using var cmd = new NpgsqlCommand("SELECT transaction_id::text, global_position FROM pf_checkpoints WHERE name = $1 FOR UPDATE", conn, tx);
        cmd.Parameters.Add(new() { Value = name });
        await using var r = await cmd.ExecuteReaderAsync(ct);
        if (!await r.ReadAsync(ct))
        {
            throw new InvalidOperationException($"Checkpoint row '{name}' vanished inside its own transaction.");
        }

        return new GlobalCheckpoint(ulong.Parse(r.GetString(0), CultureInfo.InvariantCulture), r.GetInt64(1));
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Projection {Name} partition {Partition}/{Count}: checkpoint moved under the page (rebuild or a second worker); re-reading")]
    private partial void LogCheckpointMoved(string name, int partition, int count);
}
