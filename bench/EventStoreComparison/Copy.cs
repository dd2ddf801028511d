using Npgsql;
using NpgsqlTypes;

namespace PumpFleet.EventStoreComparison;

/// <summary>
/// The floor: a binary COPY of the same rows into an identical table (same indexes), one COPY and one commit per batch,
/// so it pays the same number of commits as the stores but no version check, no idempotency check and no parse.
/// </summary>
public static class Copy
{
    /// <summary>Copies one batch at versions <paramref name="expectedVersion"/>+1…</summary>
    public static async Task AppendAsync(NpgsqlDataSource ds, string stream, long expectedVersion, IReadOnlyList<BenchEvent> batch)
    {
        await using var conn = await ds.OpenConnectionAsync();
        await using var w = await conn.BeginBinaryImportAsync(
            "COPY pf_events_copy (stream_id, version, event_id, event_type, seq, device_time, received_at, clock_suspect, data, metadata) FROM STDIN (FORMAT BINARY)");
        var version = expectedVersion;
        foreach (var e in batch)
        {
            var r = e.Ours;
            await w.StartRowAsync();
            await w.WriteAsync(stream, NpgsqlDbType.Text);
            await w.WriteAsync(++version, NpgsqlDbType.Bigint);
            await w.WriteAsync(r.EventId, NpgsqlDbType.Uuid);
            await w.WriteAsync(r.Type, NpgsqlDbType.Text);
            await w.WriteAsync(r.Seq!.Value, NpgsqlDbType.Bigint);
            await w.WriteAsync(r.DeviceTime!.Value.UtcDateTime, NpgsqlDbType.TimestampTz);
            await w.WriteAsync(r.ReceivedAt.UtcDateTime, NpgsqlDbType.TimestampTz);
            await w.WriteAsync(r.ClockSuspect, NpgsqlDbType.Boolean);
            await w.WriteAsync(r.Data, NpgsqlDbType.Jsonb);
            await w.WriteAsync(r.Metadata!, NpgsqlDbType.Jsonb);
        }

        await w.CompleteAsync();
    }
}
