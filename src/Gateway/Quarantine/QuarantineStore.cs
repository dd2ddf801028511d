using Npgsql;
using NpgsqlTypes;

namespace PumpFleet.Gateway.Quarantine;

/// <summary>One item to quarantine: a whole message (<see cref="Seq"/> usually null) or one event of it.</summary>
public sealed record QuarantineItem(
    string HubId, string? Serial, string Topic, bool WholeMessage, bool Refused, long? Seq, string Code, string Reason,
    DateTimeOffset ReceivedAt, ReadOnlyMemory<byte> Payload);

/// <summary>A quarantined item as the API serves it.</summary>
public sealed record QuarantineEntry(
    long Id, string HubId, string? Serial, string Topic, string Scope, bool Refused, long? Seq, string Code, string Reason,
    DateTimeOffset ReceivedAt, byte[] Payload);

/// <summary>The quarantine table (Sql/010_gateway.sql).</summary>
public sealed class QuarantineStore(NpgsqlDataSource dataSource)
{
    /// <summary>Writes the items in one round trip. Throws when PostgreSQL is unreachable (the message is then not acknowledged).</summary>
    public async Task AddAsync(IReadOnlyList<QuarantineItem> items, CancellationToken ct)
    {
        if (items.Count == 0)
        {
            return;
        }

        await using var batch = dataSource.CreateBatch();
        foreach (var i in items)
        {
            var cmd = new NpgsqlBatchCommand("""
                INSERT INTO pf_gateway_quarantine (hub_id, serial, topic, scope, refused, seq, code, reason, received_at, payload)
                VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
                """);
            cmd.Parameters.Add(new() { Value = i.HubId });
            cmd.Parameters.Add(new() { Value = (object?)i.Serial ?? DBNull.Value, NpgsqlDbType = NpgsqlDbType.Text });
            cmd.Parameters.Add(new() { Value = i.Topic });
            cmd.Parameters.Add(new() { Value = i.WholeMessage ? "message" : "event" });
            cmd.Parameters.Add(new() { Value = i.Refused });
            cmd.Parameters.Add(new() { Value = (object?)i.Seq ?? DBNull.Value, NpgsqlDbType = NpgsqlDbType.Bigint });
            cmd.Parameters.Add(new() { Value = i.Code });
            cmd.Parameters.Add(new() { Value = i.Reason });
            cmd.Parameters.Add(new() { Value = i.ReceivedAt.ToUniversalTime() });
            cmd.Parameters.Add(new() { Value = i.Payload.ToArray(), NpgsqlDbType = NpgsqlDbType.Bytea });
            batch.BatchCommands.Add(cmd);
        }

        await batch.ExecuteNonQueryAsync(ct);
    }

    /// <summary>Newest items first, filtered by hub and/or serial.</summary>
    public async Task<IReadOnlyList<QuarantineEntry>> QueryAsync(string? hubId, string? serial, int limit, long? beforeId, CancellationToken ct)
    {
        await using var cmd = dataSource.CreateCommand("""
            SELECT id, hub_id, serial, topic, scope, refused, seq, code, reason, received_at, payload
            FROM pf_gateway_quarantine
            WHERE ($1::text IS NULL OR hub_id = $1) AND ($2::text IS NULL OR serial = $2) AND ($3::bigint IS NULL OR id < $3)
            ORDER BY id DESC
            LIMIT $4
            """);
        cmd.Parameters.Add(new() { Value = (object?)hubId ?? DBNull.Value, NpgsqlDbType = NpgsqlDbType.Text });
        cmd.Parameters.Add(new() { Value = (object?)serial ?? DBNull.Value, NpgsqlDbType = NpgsqlDbType.Text });
        cmd.Parameters.Add(new() { Value = (object?)beforeId ?? DBNull.Value, NpgsqlDbType = NpgsqlDbType.Bigint });
        cmd.Parameters.Add(new() { Value = limit });
        var list = new List<QuarantineEntry>();
        await using var r = await cmd.ExecuteReaderAsync(ct);
        while (await r.ReadAsync(ct))
        {
            list.Add(new QuarantineEntry(r.GetInt64(0), r.GetString(1), await r.IsDBNullAsync(2, ct) ? null : r.GetString(2), r.GetString(3),
                r.GetString(4), r.GetBoolean(5), await r.IsDBNullAsync(6, ct) ? null : r.GetInt64(6), r.GetString(7), r.GetString(8),
                await r.GetFieldValueAsync<DateTimeOffset>(9, ct), await r.GetFieldValueAsync<byte[]>(10, ct)));
        }

        return list;
    }

    /// <summary>Items currently in the quarantine; 0 while the table does not exist yet (before the gateway's migration).</summary>
    public async Task<long> CountAsync(CancellationToken ct)
    {
        await using var cmd = dataSource.CreateCommand("SELECT count(*) FROM pf_gateway_quarantine");
        try
        {
            return (long)(await cmd.ExecuteScalarAsync(ct) ?? 0L);
        }
        catch (PostgresException e) when (e.SqlState == PostgresErrorCodes.UndefinedTable)
        {
            return 0;
        }
    }
}
