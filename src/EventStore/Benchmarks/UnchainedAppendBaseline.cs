using Npgsql;
using NpgsqlTypes;

namespace PumpFleet.EventStore.Benchmarks;

/// <summary>
/// The price of tamper evidence (docs/benchmarks.md): the store's append as it was before the hash chain (one
/// INSERT … SELECT FROM unnest, same parameters, same version guard) into the same table. Only a benchmark baseline:
/// <see cref="SwitchOffHashChainAsync"/> breaks the chain for the whole database, so it runs in throwaway databases
/// only. Kept here because only the event store names its tables; the platform never calls it.
/// </summary>
public static class UnchainedAppendBaseline
{
    /// <summary>Makes the hash column nullable and disables the chain trigger (which would fill it in).</summary>
    public static async Task SwitchOffHashChainAsync(NpgsqlDataSource dataSource, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(dataSource);
        await using (var cmd = dataSource.CreateCommand("ALTER TABLE pf_events ALTER COLUMN hash DROP NOT NULL"))
        {
            await cmd.ExecuteNonQueryAsync(ct);
        }

        await using (var cmd = dataSource.CreateCommand("ALTER TABLE pf_events DISABLE TRIGGER pf_events_chain"))
        {
            await cmd.ExecuteNonQueryAsync(ct);
        }
    }

    /// <summary>Appends <paramref name="events"/> after <paramref name="expected"/> without a hash; returns the new version.</summary>
    public static async Task<long> AppendAsync(
        NpgsqlDataSource dataSource, string streamId, long expected, IReadOnlyList<EventToAppend> events, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(dataSource);
        ArgumentNullException.ThrowIfNull(events);
        await using var cmd = dataSource.CreateCommand("""
            INSERT INTO pf_events (stream_id, version, event_id, event_type, seq, device_time, received_at, clock_suspect, data, metadata)
            SELECT $1, $2 + t.ord, t.id, t.type, t.seq, t.at, t.recv, t.cs, t.data::jsonb, t.meta::jsonb
            FROM unnest($3::uuid[], $4::text[], $5::bigint[], $6::timestamptz[], $7::timestamptz[], $8::boolean[], $9::text[], $10::text[])
                 WITH ORDINALITY AS t(id, type, seq, at, recv, cs, data, meta, ord)
            WHERE $2 = 0 OR EXISTS (SELECT 1 FROM pf_events WHERE stream_id = $1 AND version = $2)
            """);
        cmd.Parameters.Add(new() { Value = streamId });
        cmd.Parameters.Add(new() { Value = expected });
        cmd.Parameters.Add(new() { Value = events.Select(e => e.EventId).ToArray() });
        cmd.Parameters.Add(new() { Value = events.Select(e => e.Type).ToArray() });
        cmd.Parameters.Add(new() { Value = events.Select(e => e.Seq).ToArray() });
        cmd.Parameters.Add(new() { Value = events.Select(e => e.DeviceTime?.UtcDateTime).ToArray(), NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.TimestampTz });
        cmd.Parameters.Add(new() { Value = events.Select(e => e.ReceivedAt.UtcDateTime).ToArray(), NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.TimestampTz });
        cmd.Parameters.Add(new() { Value = events.Select(e => e.ClockSuspect).ToArray() });
        cmd.Parameters.Add(new() { Value = events.Select(e => e.Data).ToArray() });
        cmd.Parameters.Add(new() { Value = events.Select(e => e.Metadata).ToArray(), NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Text });
        var inserted = await cmd.ExecuteNonQueryAsync(ct);
        return inserted == events.Count ? expected + inserted : throw new InvalidOperationException($"{streamId}: inserted {inserted} of {events.Count}");
    }
}
