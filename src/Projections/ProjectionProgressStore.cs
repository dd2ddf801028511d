using Npgsql;
using PumpFleet.EventStore;
using PumpFleet.EventStore.Log;

namespace PumpFleet.Projections;

/// <summary>Lag of one projection (slowest partition).</summary>
public sealed record LagFigure(string Projection, long Events, double Seconds);

/// <summary>Progress of one projection partition (<c>GET /api/admin/projections</c>).</summary>
public sealed record ProjectionProgress(string Name, string Projection, DateTimeOffset? LastReceivedAt, long EventsProcessed, DateTimeOffset UpdatedAt);

/// <summary>
/// <c>pf_projection_progress</c>, the engine's own table: what each partition has processed. The runner writes a row
/// in every page's transaction, the rebuilder deletes a projection's rows; readers (the API, the lag gauge) ask here.
/// </summary>
public sealed class ProjectionProgressStore(NpgsqlDataSource dataSource, IEventReader reader, ILogPartitionReader logReader, ICheckpointStore checkpoints)
{
    /// <summary>A string that changes whenever any projection applied a page (cheap: one small table).</summary>
    public async Task<string> VersionAsync(CancellationToken ct)
    {
        await using var cmd = dataSource.CreateCommand(
            "SELECT coalesce(sum(events_processed), 0)::text || '@' || coalesce(max(updated_at)::text, '') FROM pf_projection_progress");
        return (string)(await cmd.ExecuteScalarAsync(ct) ?? "");
    }

    /// <summary>Progress rows of every projection partition.</summary>
    public async Task<IReadOnlyList<ProjectionProgress>> ListAsync(CancellationToken ct)
    {
        await using var cmd = dataSource.CreateCommand("SELECT name, projection, last_received_at, events_processed, updated_at FROM pf_projection_progress ORDER BY name");
        var list = new List<ProjectionProgress>();
        await using var r = await cmd.ExecuteReaderAsync(ct);
        while (await r.ReadAsync(ct))
        {
            list.Add(new ProjectionProgress(r.GetString(0), r.GetString(1), r.IsDBNull(2) ? null : r.GetFieldValue<DateTimeOffset>(2), r.GetInt64(3), r.GetFieldValue<DateTimeOffset>(4)));
        }

        return list;
    }

    /// <summary>
    /// The statements that record a page inside its transaction (the checkpoint advances in the same one, in the same
    /// round trip). Unless <paramref name="synchronousCommit"/>, the transaction's commit does not wait for its WAL to
    /// reach the disk (docs/projections.md, "Commit without waiting for the disk"): what a crash of the database loses
    /// is a tail of whole pages, checkpoint and rows together, which the workers read again from the log.
    /// </summary>
    internal static IReadOnlyList<NpgsqlBatchCommand> RecordPageCommands(
        string checkpointName, string projection, DateTimeOffset lastReceivedAt, long events, bool synchronousCommit)
    {
        var record = new NpgsqlBatchCommand("""
            INSERT INTO pf_projection_progress (name, projection, last_received_at, events_processed, updated_at)
            VALUES ($1, $2, $3, $4, now())
            ON CONFLICT (name) DO UPDATE SET last_received_at = excluded.last_received_at,
                events_processed = pf_projection_progress.events_processed + excluded.events_processed, updated_at = now()
            """);
        record.Parameters.Add(new() { Value = checkpointName });
        record.Parameters.Add(new() { Value = projection });
        record.Parameters.Add(new() { Value = lastReceivedAt });
        record.Parameters.Add(new() { Value = events });
        return synchronousCommit ? [record] : [new NpgsqlBatchCommand("SET LOCAL synchronous_commit = off"), record];
    }

    /// <summary>
    /// <see cref="RecordPageCommands"/> for the pages of several log partitions committed in one transaction (a combined
    /// live page, <see cref="ProjectionOptions.CombineLivePartitions"/>): one statement for all their progress rows.
    /// </summary>
    internal static IReadOnlyList<NpgsqlBatchCommand> RecordPagesCommands(
        string projection, IReadOnlyList<(string CheckpointName, DateTimeOffset LastReceivedAt, long Events)> pages, bool synchronousCommit)
    {
        var record = new NpgsqlBatchCommand("""
            INSERT INTO pf_projection_progress (name, projection, last_received_at, events_processed, updated_at)
            SELECT u.name, $1, u.last_received_at, u.events, now() FROM unnest($2::text[], $3::timestamptz[], $4::bigint[]) AS u(name, last_received_at, events)
            ON CONFLICT (name) DO UPDATE SET last_received_at = excluded.last_received_at,
                events_processed = pf_projection_progress.events_processed + excluded.events_processed, updated_at = now()
            """);
        record.Parameters.Add(new() { Value = projection });
        record.Parameters.Add(new() { Value = pages.Select(p => p.CheckpointName).ToArray() });
        record.Parameters.Add(new() { Value = pages.Select(p => p.LastReceivedAt).ToArray() });
        record.Parameters.Add(new() { Value = pages.Select(p => p.Events).ToArray() });
        return synchronousCommit ? [record] : [new NpgsqlBatchCommand("SET LOCAL synchronous_commit = off"), record];
    }

    /// <summary>Forgets a projection's progress inside the rebuild's transaction.</summary>
    internal static async Task ForgetAsync(NpgsqlConnection conn, NpgsqlTransaction tx, string projection, CancellationToken ct)
    {
        await using var cmd = new NpgsqlCommand("DELETE FROM pf_projection_progress WHERE projection = $1", conn, tx);
        cmd.Parameters.Add(new() { Value = projection });
        await cmd.ExecuteNonQueryAsync(ct);
    }

    /// <summary>
    /// Lag of every projection, slowest log partition each: events of that partition stored after its checkpoint
    /// (counted up to ten million) and the newest receive time minus the last one it processed.
    /// <paramref name="partitions"/> (the worker count) no longer matters: checkpoints are per log partition.
    /// </summary>
    public async Task<IReadOnlyList<LagFigure>> LagAsync(int partitions, CancellationToken ct)
    {
        var rows = new List<(string Name, string Projection, DateTimeOffset? LastReceivedAt)>();
        await using (var cmd = dataSource.CreateCommand("SELECT name, projection, last_received_at FROM pf_projection_progress WHERE name LIKE $1"))
        {
            cmd.Parameters.Add(new() { Value = $"projection:%of{LogPartitioning.Count}" });
            await using var r = await cmd.ExecuteReaderAsync(ct);
            while (await r.ReadAsync(ct))
            {
                rows.Add((r.GetString(0), r.GetString(1), r.IsDBNull(2) ? null : r.GetFieldValue<DateTimeOffset>(2)));
            }
        }

        var head = await reader.ReadHeadAsync(ct);
        // Every partition's checkpoint in one query (80 for five projections; they were one query each).
        var stored = await checkpoints.LoadCheckpointsAsync([.. rows.Select(r => r.Name)], ct);
        var lag = new Dictionary<string, (long Events, double Seconds)>(StringComparer.Ordinal);
        foreach (var (name, projection, lastReceivedAt) in rows)
        {
            var q = int.Parse(name[(name.LastIndexOf(':') + 1)..name.LastIndexOf("of", StringComparison.Ordinal)], System.Globalization.CultureInfo.InvariantCulture);
            var events = await logReader.CountPartitionAfterAsync(q, stored[name], 10_000_000, ct);
            // Nothing received yet, or nothing stored: no age to report. A partition with nothing left to read is not
            // late, however old its last event is (its pumps may simply be quiet).
            var seconds = head is null || lastReceivedAt is null || events == 0 ? 0 : Math.Max(0, (head.ReceivedAt - lastReceivedAt.Value).TotalSeconds);
            lag[projection] = lag.TryGetValue(projection, out var l) ? (Math.Max(l.Events, events), Math.Max(l.Seconds, seconds)) : (events, seconds);
        }

        return [.. lag.Select(l => new LagFigure(l.Key, l.Value.Events, l.Value.Seconds))];
    }
}
