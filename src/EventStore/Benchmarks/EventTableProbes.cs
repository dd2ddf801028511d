using Npgsql;

namespace PumpFleet.EventStore.Benchmarks;

/// <summary>What the event table holds for one stream: rows with a seq, distinct seqs, and distinct seqs in 1..committed.</summary>
public readonly record struct StoredSeqCounts(long Rows, long DistinctSeqs, long AckedStored);

/// <summary>
/// Read-only counts the benchmarks check their results with (every acknowledged event stored, nothing twice). Kept
/// here, not in each benchmark, because only the event store names its tables; the platform never calls these.
/// </summary>
public static class EventTableProbes
{
    /// <summary>Rows in the event table that carry a device seq (events from pumps, not platform events).</summary>
    public static async Task<long> CountDeviceEventsAsync(NpgsqlDataSource dataSource, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(dataSource);
        await using var cmd = dataSource.CreateCommand("SELECT count(*) FROM pf_events WHERE seq IS NOT NULL");
        return (long)(await cmd.ExecuteScalarAsync(ct))!;
    }

    /// <summary>Rows whose event id is one of <paramref name="eventIds"/> (a second copy of an event counts twice).</summary>
    public static async Task<long> CountEventIdsAsync(NpgsqlDataSource dataSource, IReadOnlyCollection<Guid> eventIds, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(dataSource);
        ArgumentNullException.ThrowIfNull(eventIds);
        await using var cmd = dataSource.CreateCommand("SELECT count(*) FROM pf_events WHERE event_id = ANY($1)");
        cmd.Parameters.Add(new() { Value = eventIds.ToArray() });
        return (long)(await cmd.ExecuteScalarAsync(ct))!;
    }

    /// <summary>The event ids of <paramref name="eventIds"/> that are committed (visible to a new statement).</summary>
    public static async Task<Guid[]> CommittedEventIdsAsync(NpgsqlDataSource dataSource, IReadOnlyCollection<Guid> eventIds, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(dataSource);
        ArgumentNullException.ThrowIfNull(eventIds);
        await using var cmd = dataSource.CreateCommand("SELECT event_id FROM pf_events WHERE event_id = ANY($1)");
        cmd.Parameters.Add(new() { Value = eventIds.ToArray() });
        var list = new List<Guid>();
        await using var r = await cmd.ExecuteReaderAsync(ct);
        while (await r.ReadAsync(ct))
        {
            list.Add(r.GetGuid(0));
        }

        return [.. list];
    }

    /// <summary>
    /// Per stream in <paramref name="streamIds"/> (a pump's serial), with <paramref name="committed"/> its acknowledged
    /// seq at the same index: rows with a seq, distinct seqs, and how many of the seqs 1..committed are stored.
    /// </summary>
    public static async Task<Dictionary<string, StoredSeqCounts>> StoredSeqsAsync(
        NpgsqlDataSource dataSource, string[] streamIds, long[] committed, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(dataSource);
        ArgumentNullException.ThrowIfNull(streamIds);
        ArgumentNullException.ThrowIfNull(committed);
        if (streamIds.Length != committed.Length)
        {
            throw new ArgumentException($"{streamIds.Length} streams but {committed.Length} committed seqs.", nameof(committed));
        }

        await using var cmd = dataSource.CreateCommand("""
            SELECT a.serial,
                   (SELECT count(*) FROM pf_events e WHERE e.stream_id = a.serial AND e.seq IS NOT NULL),
                   (SELECT count(DISTINCT e.seq) FROM pf_events e WHERE e.stream_id = a.serial AND e.seq IS NOT NULL),
                   (SELECT count(DISTINCT e.seq) FROM pf_events e WHERE e.stream_id = a.serial AND e.seq BETWEEN 1 AND a.committed)
            FROM unnest($1::text[], $2::bigint[]) AS a(serial, committed)
            """);
        cmd.Parameters.Add(new() { Value = streamIds });
        cmd.Parameters.Add(new() { Value = committed });
        var result = new Dictionary<string, StoredSeqCounts>(StringComparer.Ordinal);
        await using var r = await cmd.ExecuteReaderAsync(ct);
        while (await r.ReadAsync(ct))
        {
            result[r.GetString(0)] = new StoredSeqCounts(r.GetInt64(1), r.GetInt64(2), r.GetInt64(3));
        }

        return result;
    }
}
