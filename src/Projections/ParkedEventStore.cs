using Npgsql;
using PumpFleet.EventStore;

namespace PumpFleet.Projections;

/// <summary>An event a projection could not apply (<c>GET /api/admin/projections/parked</c>, <c>projections parked</c>).</summary>
public sealed record ParkedEvent(
    long Id, string Projection, int LogPartition, string StreamId, long Version, Guid EventId, string EventType, string Reason,
    int Attempts, string Status, DateTimeOffset ParkedAt, string? RetryBy, DateTimeOffset? RetriedAt);

/// <summary>
/// <c>pf_projection_parked</c> (migration 050), the engine's table of events a projection kept failing on. The runner
/// parks inside the page's transaction and applies requested retries; operators list and ask for retries here.
/// </summary>
public sealed class ParkedEventStore(NpgsqlDataSource dataSource, IEventReader reader)
{
    private const string Columns =
        "id, projection, log_partition, stream_id, version, event_id, event_type, reason, attempts, status, parked_at, retry_by, retried_at";

    /// <summary>Parked events, newest first; <paramref name="all"/> includes those already applied by a retry.</summary>
    public async Task<IReadOnlyList<ParkedEvent>> ListAsync(bool all, CancellationToken ct)
    {
        await using var cmd = dataSource.CreateCommand(
            $"SELECT {Columns} FROM pf_projection_parked WHERE $1 OR status <> 'applied' ORDER BY id DESC LIMIT 1000");
        cmd.Parameters.Add(new() { Value = all });
        var list = new List<ParkedEvent>();
        await using var r = await cmd.ExecuteReaderAsync(ct);
        while (await r.ReadAsync(ct))
        {
            list.Add(new ParkedEvent(
                r.GetInt64(0), r.GetString(1), r.GetInt16(2), r.GetString(3), r.GetInt64(4), r.GetGuid(5), r.GetString(6), r.GetString(7),
                r.GetInt32(8), r.GetString(9), r.GetFieldValue<DateTimeOffset>(10), r.IsDBNull(11) ? null : r.GetString(11),
                r.IsDBNull(12) ? null : r.GetFieldValue<DateTimeOffset>(12)));
        }

        return list;
    }

    /// <summary>Events parked and not yet applied, per projection (the <c>pumpfleet.projection.parked.open</c> gauge).</summary>
    public async Task<IReadOnlyDictionary<string, long>> CountOpenAsync(CancellationToken ct)
    {
        await using var cmd = dataSource.CreateCommand(
            "SELECT projection, count(*) FROM pf_projection_parked WHERE status <> 'applied' GROUP BY projection");
        var counts = new Dictionary<string, long>(StringComparer.Ordinal);
        await using var r = await cmd.ExecuteReaderAsync(ct);
        while (await r.ReadAsync(ct))
        {
            counts[r.GetString(0)] = r.GetInt64(1);
        }

        return counts;
    }

    /// <summary>
    /// Asks for a retry of parked event <paramref name="id"/> (after the cause was fixed): the worker owning its log
    /// partition applies it at its next poll. False when no such event is parked (unknown, applied or already asked).
    /// </summary>
    public async Task<bool> RequestRetryAsync(long id, string actor, CancellationToken ct)
    {
        ArgumentException.ThrowIfNullOrEmpty(actor);
        await using var cmd = dataSource.CreateCommand(
            "UPDATE pf_projection_parked SET status = 'retry', retry_by = $2 WHERE id = $1 AND status = 'parked'");
        cmd.Parameters.Add(new() { Value = id });
        cmd.Parameters.Add(new() { Value = actor });
        return await cmd.ExecuteNonQueryAsync(ct) == 1;
    }

    /// <summary>Retries asked for in <paramref name="logPartitions"/> of <paramref name="projection"/>, oldest first.</summary>
    internal async Task<IReadOnlyList<(long Id, int LogPartition, string StreamId, long Version)>> RetryRequestedAsync(
        string projection, IReadOnlyList<int> logPartitions, CancellationToken ct)
    {
        await using var cmd = dataSource.CreateCommand("""
            SELECT id, log_partition, stream_id, version FROM pf_projection_parked
            WHERE projection = $1 AND log_partition = ANY($2) AND status = 'retry' ORDER BY id
            """);
        cmd.Parameters.Add(new() { Value = projection });
        cmd.Parameters.Add(new() { Value = logPartitions.Select(p => (short)p).ToArray() });
        var list = new List<(long, int, string, long)>();
        await using var r = await cmd.ExecuteReaderAsync(ct);
        while (await r.ReadAsync(ct))
        {
            list.Add((r.GetInt64(0), r.GetInt16(1), r.GetString(2), r.GetInt64(3)));
        }

        return list;
    }

    /// <summary>The parked event itself, read from the log by stream and version (the table keeps only its identity).</summary>
    internal async Task<StoredEvent?> LoadEventAsync(string streamId, long version, CancellationToken ct)
    {
        await foreach (var e in reader.ReadStreamAsync(streamId, version - 1, ct))
        {
            return e.Version == version ? e : null;
        }

        return null;
    }

    /// <summary>Parks <paramref name="e"/> inside the page's transaction.</summary>
    internal static async Task ParkAsync(
        NpgsqlConnection conn, NpgsqlTransaction tx, string projection, int logPartition, StoredEvent e, string reason, int attempts, CancellationToken ct)
    {
        await using var cmd = new NpgsqlCommand("""
            INSERT INTO pf_projection_parked (projection, log_partition, stream_id, version, event_id, event_type, reason, attempts)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
            ON CONFLICT (projection, event_id) DO UPDATE SET reason = excluded.reason, attempts = excluded.attempts,
                status = 'parked', parked_at = now()
            """, conn, tx);
        cmd.Parameters.Add(new() { Value = projection });
        cmd.Parameters.Add(new() { Value = (short)logPartition });
        cmd.Parameters.Add(new() { Value = e.StreamId });
        cmd.Parameters.Add(new() { Value = e.Version });
        cmd.Parameters.Add(new() { Value = e.EventId });
        cmd.Parameters.Add(new() { Value = e.Type });
        cmd.Parameters.Add(new() { Value = reason });
        cmd.Parameters.Add(new() { Value = attempts });
        await cmd.ExecuteNonQueryAsync(ct);
    }

    /// <summary>Ends a retry inside its transaction: applied when <paramref name="error"/> is null, otherwise parked again with it.</summary>
    internal static async Task FinishRetryAsync(NpgsqlConnection conn, NpgsqlTransaction tx, long id, string? error, CancellationToken ct)
    {
        await using var cmd = new NpgsqlCommand("""
            UPDATE pf_projection_parked SET status = CASE WHEN $2::text IS NULL THEN 'applied' ELSE 'parked' END,
                reason = coalesce($2, reason), attempts = attempts + 1, retried_at = now()
            WHERE id = $1
            """, conn, tx);
        cmd.Parameters.Add(new() { Value = id });
        cmd.Parameters.Add(new() { Value = (object?)error ?? DBNull.Value, NpgsqlDbType = NpgsqlTypes.NpgsqlDbType.Text });
        await cmd.ExecuteNonQueryAsync(ct);
    }

    /// <summary>Forgets a projection's parked events inside a rebuild's transaction (the rebuild replays them).</summary>
    internal static async Task ForgetAsync(NpgsqlConnection conn, NpgsqlTransaction tx, string projection, CancellationToken ct)
    {
        await using var cmd = new NpgsqlCommand("DELETE FROM pf_projection_parked WHERE projection = $1", conn, tx);
        cmd.Parameters.Add(new() { Value = projection });
        await cmd.ExecuteNonQueryAsync(ct);
    }
}
