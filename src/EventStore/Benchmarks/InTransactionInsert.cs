using Npgsql;
using NpgsqlTypes;

namespace PumpFleet.EventStore.Benchmarks;

/// <summary>
/// The gap trials' writer (docs/benchmarks.md): the store's own append commits at once, so a benchmark that needs a
/// transaction to stay open after its INSERT writes the same row shape into the same table inside a transaction of
/// its own. Doses only (event type <c>dose.delivered</c>, clock not suspect, versions 1…n of a new stream). Kept here
/// because only the event store names its tables; the platform never calls it.
/// </summary>
public static class InTransactionInsert
{
    private const string DoseType = "dose.delivered";

    /// <summary>Inserts <paramref name="doses"/> as versions 1…n of <paramref name="streamId"/> in <paramref name="transaction"/>; the caller commits or rolls back.</summary>
    public static async Task InsertDosesAsync(
        NpgsqlConnection connection, NpgsqlTransaction transaction, string streamId, IReadOnlyList<EventToAppend> doses, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(connection);
        ArgumentNullException.ThrowIfNull(transaction);
        ArgumentNullException.ThrowIfNull(doses);
        // The statement writes the type and the clock flag as constants; a row that differs would be stored wrongly.
        if (doses.FirstOrDefault(e => e.Type != DoseType || e.ClockSuspect || e.Seq is null || e.DeviceTime is null || e.Metadata is null) is { } odd)
        {
            throw new ArgumentException($"Event {odd.EventId} is not a dose with seq, device time and metadata and a trusted clock.", nameof(doses));
        }

        await using var cmd = new NpgsqlCommand("""
            INSERT INTO pf_events (stream_id, version, event_id, event_type, seq, device_time, received_at, clock_suspect, data, metadata)
            SELECT $1, t.ord, t.id, 'dose.delivered', t.seq, t.at, t.recv, false, t.data::jsonb, t.meta::jsonb
            FROM unnest($2::uuid[], $3::bigint[], $4::timestamptz[], $5::timestamptz[], $6::text[], $7::text[])
                 WITH ORDINALITY AS t(id, seq, at, recv, data, meta, ord)
            """, connection, transaction);
        cmd.Parameters.Add(new() { Value = streamId });
        cmd.Parameters.Add(new() { Value = doses.Select(e => e.EventId).ToArray() });
        cmd.Parameters.Add(new() { Value = doses.Select(e => e.Seq!.Value).ToArray() });
        cmd.Parameters.Add(new() { Value = doses.Select(e => e.DeviceTime!.Value.UtcDateTime).ToArray(), NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.TimestampTz });
        cmd.Parameters.Add(new() { Value = doses.Select(e => e.ReceivedAt.UtcDateTime).ToArray(), NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.TimestampTz });
        cmd.Parameters.Add(new() { Value = doses.Select(e => e.Data).ToArray() });
        cmd.Parameters.Add(new() { Value = doses.Select(e => e.Metadata!).ToArray() });
        await cmd.ExecuteNonQueryAsync(ct);
    }
}
