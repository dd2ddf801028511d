using Npgsql;

namespace PumpFleet.EventStore.Retention;

/// <summary>A range partition of the event table (migration 040): rows received in [<see cref="From"/>, <see cref="To"/>).</summary>
/// <param name="Name">The partition table's name.</param>
/// <param name="From">Lower bound, inclusive; null for the initial partition (everything before <see cref="To"/>).</param>
/// <param name="To">Upper bound, exclusive.</param>
/// <param name="ArchivedAt">When it was archived and dropped (<see cref="EventArchiver"/>); null while it is in the table.</param>
public sealed record EventPartition(string Name, DateTimeOffset? From, DateTimeOffset To, DateTimeOffset? ArchivedAt);

/// <summary>The monthly partitions of the event table: creating them ahead of time and listing them.</summary>
public sealed class EventPartitions(NpgsqlDataSource dataSource)
{
    /// <summary>
    /// Creates the missing monthly partitions up to <paramref name="monthsAhead"/> months after the current one (UTC) and
    /// returns those it created. Safe to call from several processes at once (the database serialises the callers).
    /// </summary>
    public async Task<IReadOnlyList<EventPartition>> EnsureAsync(int monthsAhead, CancellationToken ct = default)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(monthsAhead);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(monthsAhead, 120);
        await using var cmd = dataSource.CreateCommand("SELECT partition_name, from_at, to_at FROM pf_events_ensure_partitions($1)");
        cmd.Parameters.Add(new() { Value = monthsAhead });
        var created = new List<EventPartition>();
        await using var r = await cmd.ExecuteReaderAsync(ct);
        while (await r.ReadAsync(ct))
        {
            created.Add(new EventPartition(r.GetString(0), r.GetFieldValue<DateTimeOffset>(1), r.GetFieldValue<DateTimeOffset>(2), null));
        }

        return created;
    }

    /// <summary>Every partition known to the bookkeeping (archived ones included), oldest first; the default partition is not listed.</summary>
    public async Task<IReadOnlyList<EventPartition>> ListAsync(CancellationToken ct = default)
    {
        await using var cmd = dataSource.CreateCommand(
            "SELECT name, from_at, to_at, archived_at FROM pf_event_partitions ORDER BY to_at");
        var list = new List<EventPartition>();
        await using var r = await cmd.ExecuteReaderAsync(ct);
        while (await r.ReadAsync(ct))
        {
            list.Add(new EventPartition(r.GetString(0), r.IsDBNull(1) ? null : r.GetFieldValue<DateTimeOffset>(1),
                r.GetFieldValue<DateTimeOffset>(2), r.IsDBNull(3) ? null : r.GetFieldValue<DateTimeOffset>(3)));
        }

        return list;
    }
}
