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
    /// <summary>Most payload bytes kept per row (the protocol's message limit); a longer payload is cut.</summary>
    public const int MaxPayloadBytes = 256 * 1024;

    /// <summary>Most characters kept of a text column (topic, reason, ids).</summary>
    public const int MaxTextLength = 2048;

    /// <summary>
    /// Text as PostgreSQL accepts it: no NUL, no lone UTF-16 surrogate (Npgsql's strict UTF-8 encoder throws on one,
    /// and that would look like a database outage and withhold the ack forever), at most
    /// <see cref="MaxTextLength"/> characters. Whatever a hub sends can end up in a reason or a topic.
    /// </summary>
    public static string Clean(string s)
    {
        var needs = s.Length > MaxTextLength;
        for (var i = 0; i < s.Length && !needs; i++)
        {
            var c = s[i];
            needs = c == '\0' || (char.IsHighSurrogate(c) ? i + 1 >= s.Length || !char.IsLowSurrogate(s[++i]) : char.IsLowSurrogate(c));
        }

        if (!needs)
        {
            return s;
        }

        var b = new System.Text.StringBuilder(Math.Min(s.Length, MaxTextLength + 1));
        for (var i = 0; i < s.Length && b.Length < MaxTextLength; i++)
        {
            var c = s[i];
            if (char.IsHighSurrogate(c) && i + 1 < s.Length && char.IsLowSurrogate(s[i + 1]))
            {
                if (b.Length + 2 > MaxTextLength)
                {
                    break;
                }

                b.Append(c).Append(s[++i]);
            }
            else
            {
                b.Append(c == '\0' || char.IsSurrogate(c) ? '\uFFFD' : c);
            }
        }

        if (s.Length > MaxTextLength)
        {
            b.Append('…');
        }

        return b.ToString();
    }

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
            cmd.Parameters.Add(new() { Value = Clean(i.HubId) });
            cmd.Parameters.Add(new() { Value = i.Serial is null ? DBNull.Value : Clean(i.Serial), NpgsqlDbType = NpgsqlDbType.Text });
            cmd.Parameters.Add(new() { Value = Clean(i.Topic) });
            cmd.Parameters.Add(new() { Value = i.WholeMessage ? "message" : "event" });
            cmd.Parameters.Add(new() { Value = i.Refused });
            cmd.Parameters.Add(new() { Value = (object?)i.Seq ?? DBNull.Value, NpgsqlDbType = NpgsqlDbType.Bigint });
            cmd.Parameters.Add(new() { Value = Clean(i.Code) });
            cmd.Parameters.Add(new() { Value = Clean(i.Reason) });
            cmd.Parameters.Add(new() { Value = i.ReceivedAt.ToUniversalTime() });
            var payload = i.Payload.Length > MaxPayloadBytes ? i.Payload[..MaxPayloadBytes] : i.Payload;
            cmd.Parameters.Add(new() { Value = payload.ToArray(), NpgsqlDbType = NpgsqlDbType.Bytea });
            batch.BatchCommands.Add(cmd);
        }

        await batch.ExecuteNonQueryAsync(ct);
    }

    /// <summary>
    /// Retention: deletes rows received before <paramref name="olderThan"/>, then the oldest rows beyond
    /// <paramref name="maxRows"/>. Returns how many rows went.
    /// </summary>
    public async Task<long> PurgeAsync(DateTimeOffset olderThan, long maxRows, CancellationToken ct)
    {
        await using var cmd = dataSource.CreateCommand("""
            WITH old AS (
                DELETE FROM pf_gateway_quarantine WHERE received_at < $1 RETURNING 1
            ), excess AS (
                DELETE FROM pf_gateway_quarantine
                WHERE id <= (SELECT id FROM pf_gateway_quarantine ORDER BY id DESC OFFSET $2 LIMIT 1)
                RETURNING 1
            )
            SELECT (SELECT count(*) FROM old) + (SELECT count(*) FROM excess)
            """);
        cmd.Parameters.Add(new() { Value = olderThan.ToUniversalTime() });
        cmd.Parameters.Add(new() { Value = maxRows });
        return (long)(await cmd.ExecuteScalarAsync(ct))!;
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
