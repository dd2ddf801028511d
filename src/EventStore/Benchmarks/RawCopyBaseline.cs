using Npgsql;
using NpgsqlTypes;

namespace PumpFleet.EventStore.Benchmarks;

/// <summary>A row of the raw-COPY baseline: the event at <paramref name="Version"/> of <paramref name="StreamId"/>.</summary>
public sealed record RawCopyRow(string StreamId, long Version, EventToAppend Event);

/// <summary>
/// The floor the benchmarks measure appends against (docs/benchmarks.md): a binary COPY of the same rows into
/// <c>pf_events_copy</c>, a table with the event table's columns and indexes, one COPY and one commit per call. It pays
/// the commits the store pays, but no version check, no idempotency check, no hash chain and no statement parse. Kept
/// here, not in each benchmark, because only the event store names its tables; the platform never calls it.
/// </summary>
public static class RawCopyBaseline
{
    /// <summary>Creates the baseline table (once per database; a second call does nothing).</summary>
    public static async Task CreateTableAsync(NpgsqlDataSource dataSource, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(dataSource);
        // LIKE copies NOT NULL constraints but not triggers: without the chain trigger nothing fills in the hash, so
        // the column must accept the rows COPY writes without one.
        await using var cmd = dataSource.CreateCommand("""
            CREATE TABLE IF NOT EXISTS pf_events_copy (LIKE pf_events INCLUDING ALL);
            ALTER TABLE pf_events_copy ALTER COLUMN hash DROP NOT NULL;
            """);
        await cmd.ExecuteNonQueryAsync(ct);
    }

    /// <summary>Copies <paramref name="rows"/> in one binary COPY (one commit).</summary>
    public static async Task CopyAsync(NpgsqlDataSource dataSource, IEnumerable<RawCopyRow> rows, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(dataSource);
        ArgumentNullException.ThrowIfNull(rows);
        await using var conn = await dataSource.OpenConnectionAsync(ct);
        await using var w = await conn.BeginBinaryImportAsync(
            "COPY pf_events_copy (stream_id, version, event_id, event_type, seq, device_time, received_at, clock_suspect, data, metadata) FROM STDIN (FORMAT BINARY)",
            ct);
        foreach (var (stream, version, e) in rows)
        {
            await w.StartRowAsync(ct);
            await w.WriteAsync(stream, NpgsqlDbType.Text, ct);
            await w.WriteAsync(version, NpgsqlDbType.Bigint, ct);
            await w.WriteAsync(e.EventId, NpgsqlDbType.Uuid, ct);
            await w.WriteAsync(e.Type, NpgsqlDbType.Text, ct);
            await WriteOrNullAsync(w, e.Seq, NpgsqlDbType.Bigint, ct);
            await WriteOrNullAsync(w, e.DeviceTime?.UtcDateTime, NpgsqlDbType.TimestampTz, ct);
            await w.WriteAsync(e.ReceivedAt.UtcDateTime, NpgsqlDbType.TimestampTz, ct);
            await w.WriteAsync(e.ClockSuspect, NpgsqlDbType.Boolean, ct);
            await w.WriteAsync(e.Data, NpgsqlDbType.Jsonb, ct);
            if (e.Metadata is null)
            {
                await w.WriteNullAsync(ct);
            }
            else
            {
                await w.WriteAsync(e.Metadata, NpgsqlDbType.Jsonb, ct);
            }
        }

        await w.CompleteAsync(ct);
    }

    /// <summary>Copies one stream's batch at versions <paramref name="expectedVersion"/>+1… (one commit).</summary>
    public static Task CopyAsync(NpgsqlDataSource dataSource, string streamId, long expectedVersion, IEnumerable<EventToAppend> batch, CancellationToken ct = default) =>
        CopyAsync(dataSource, batch.Select((e, i) => new RawCopyRow(streamId, expectedVersion + i + 1, e)), ct);

    private static async Task WriteOrNullAsync<T>(NpgsqlBinaryImporter w, T? value, NpgsqlDbType type, CancellationToken ct)
        where T : struct
    {
        if (value is { } v)
        {
            await w.WriteAsync(v, type, ct);
        }
        else
        {
            await w.WriteNullAsync(ct);
        }
    }
}
