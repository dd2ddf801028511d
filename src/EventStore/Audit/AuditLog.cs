using System.Text.Json;
using Npgsql;
using NpgsqlTypes;

namespace PumpFleet.EventStore.Audit;

/// <summary>Who acted: a signed-in user, a named machine (API key), the platform itself, or an operator's CLI.</summary>
public sealed record AuditActor(string Kind, string Name, string? Role)
{
    /// <summary>An operator running a command-line tool on a host (the OS user name).</summary>
    public static AuditActor Operator(string name) => new("operator", name, null);

    /// <summary>The platform acting on its own.</summary>
    public static AuditActor System(string name) => new("system", name, null);
}

/// <summary>One audit entry as written.</summary>
public sealed record AuditEntry(AuditActor Actor, string Action, string? Target, int Outcome, string? Remote, IReadOnlyDictionary<string, string?>? Detail = null);

/// <summary>One audit entry as stored.</summary>
public sealed record AuditRecord(
    long Id, DateTimeOffset At, string ActorKind, string Actor, string? Role, string Action, string? Target, int Outcome, string? Remote, string? Detail);

/// <summary>Filter of <see cref="AuditLog.QueryAsync"/>; null fields do not filter.</summary>
public sealed record AuditQuery(string? Actor = null, string? Action = null, string? Target = null, DateTimeOffset? From = null,
    DateTimeOffset? To = null, long? BeforeId = null, int Limit = 100);

/// <summary>The append-only audit trail in PostgreSQL (<c>pf_audit</c>, Sql/004_audit_trail.sql).</summary>
public sealed class AuditLog(NpgsqlDataSource dataSource)
{
    /// <summary>Appends one entry. Throws when the database cannot take it: an action that cannot be audited fails.</summary>
    public async Task WriteAsync(AuditEntry entry, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(entry);
        await using var cmd = dataSource.CreateCommand("""
            INSERT INTO pf_audit (actor_kind, actor, role, action, target, outcome, remote, detail)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8::jsonb)
            """);
        cmd.Parameters.Add(new() { Value = entry.Actor.Kind });
        cmd.Parameters.Add(new() { Value = entry.Actor.Name });
        cmd.Parameters.Add(new() { Value = (object?)entry.Actor.Role ?? DBNull.Value, NpgsqlDbType = NpgsqlDbType.Text });
        cmd.Parameters.Add(new() { Value = entry.Action });
        cmd.Parameters.Add(new() { Value = (object?)entry.Target ?? DBNull.Value, NpgsqlDbType = NpgsqlDbType.Text });
        cmd.Parameters.Add(new() { Value = entry.Outcome });
        cmd.Parameters.Add(new() { Value = (object?)entry.Remote ?? DBNull.Value, NpgsqlDbType = NpgsqlDbType.Text });
        cmd.Parameters.Add(new()
        {
            Value = entry.Detail is { Count: > 0 } d ? JsonSerializer.Serialize(d) : DBNull.Value,
            NpgsqlDbType = NpgsqlDbType.Text,
        });
        await cmd.ExecuteNonQueryAsync(ct);
    }

    /// <summary>Entries newest first.</summary>
    public async Task<IReadOnlyList<AuditRecord>> QueryAsync(AuditQuery query, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(query);
        await using var cmd = dataSource.CreateCommand("""
            SELECT id, at, actor_kind, actor, role, action, target, outcome, remote, detail::text FROM pf_audit
            WHERE ($1::text IS NULL OR actor = $1) AND ($2::text IS NULL OR action = $2) AND ($3::text IS NULL OR target = $3)
              AND ($4::timestamptz IS NULL OR at >= $4) AND ($5::timestamptz IS NULL OR at < $5) AND ($6::bigint IS NULL OR id < $6)
            ORDER BY id DESC LIMIT $7
            """);
        cmd.Parameters.Add(new() { Value = (object?)query.Actor ?? DBNull.Value, NpgsqlDbType = NpgsqlDbType.Text });
        cmd.Parameters.Add(new() { Value = (object?)query.Action ?? DBNull.Value, NpgsqlDbType = NpgsqlDbType.Text });
        cmd.Parameters.Add(new() { Value = (object?)query.Target ?? DBNull.Value, NpgsqlDbType = NpgsqlDbType.Text });
        cmd.Parameters.Add(new() { Value = (object?)query.From ?? DBNull.Value, NpgsqlDbType = NpgsqlDbType.TimestampTz });
        cmd.Parameters.Add(new() { Value = (object?)query.To ?? DBNull.Value, NpgsqlDbType = NpgsqlDbType.TimestampTz });
        cmd.Parameters.Add(new() { Value = (object?)query.BeforeId ?? DBNull.Value, NpgsqlDbType = NpgsqlDbType.Bigint });
        cmd.Parameters.Add(new() { Value = query.Limit });
        var list = new List<AuditRecord>();
        await using var r = await cmd.ExecuteReaderAsync(ct);
        while (await r.ReadAsync(ct))
        {
            list.Add(new AuditRecord(r.GetInt64(0), r.GetFieldValue<DateTimeOffset>(1), r.GetString(2), r.GetString(3),
                r.IsDBNull(4) ? null : r.GetString(4), r.GetString(5), r.IsDBNull(6) ? null : r.GetString(6), r.GetInt32(7),
                r.IsDBNull(8) ? null : r.GetString(8), r.IsDBNull(9) ? null : r.GetString(9)));
        }

        return list;
    }

    /// <summary>
    /// A page of the entries about any of <paramref name="targets"/> (e.g. a pump and its anomalies) in [from, to],
    /// oldest first, after <paramref name="afterId"/>: an export reads the trail page by page rather than all at once.
    /// </summary>
    public async Task<IReadOnlyList<AuditRecord>> ReadForTargetsAsync(
        IReadOnlyList<string> targets, DateTimeOffset? from, DateTimeOffset? to, long afterId, int limit, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(targets);
        await using var cmd = dataSource.CreateCommand("""
            SELECT id, at, actor_kind, actor, role, action, target, outcome, remote, detail::text FROM pf_audit
            WHERE target = ANY($1) AND ($2::timestamptz IS NULL OR at >= $2) AND ($3::timestamptz IS NULL OR at <= $3) AND id > $4
            ORDER BY id LIMIT $5
            """);
        cmd.Parameters.Add(new() { Value = targets.ToArray(), NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Text });
        cmd.Parameters.Add(new() { Value = (object?)from ?? DBNull.Value, NpgsqlDbType = NpgsqlDbType.TimestampTz });
        cmd.Parameters.Add(new() { Value = (object?)to ?? DBNull.Value, NpgsqlDbType = NpgsqlDbType.TimestampTz });
        cmd.Parameters.Add(new() { Value = afterId });
        cmd.Parameters.Add(new() { Value = limit });
        var list = new List<AuditRecord>();
        await using var r = await cmd.ExecuteReaderAsync(ct);
        while (await r.ReadAsync(ct))
        {
            list.Add(new AuditRecord(r.GetInt64(0), r.GetFieldValue<DateTimeOffset>(1), r.GetString(2), r.GetString(3),
                r.IsDBNull(4) ? null : r.GetString(4), r.GetString(5), r.IsDBNull(6) ? null : r.GetString(6), r.GetInt32(7),
                r.IsDBNull(8) ? null : r.GetString(8), r.IsDBNull(9) ? null : r.GetString(9)));
        }

        return list;
    }

    // "PFDIRAUD" as a 64-bit advisory lock key: one process at a time compares and records the directory.
    private const long DirectoryLockKey = 0x5046_4449_5241_5544;

    /// <summary>
    /// Records the changes of a directory (name → "role:fingerprint", e.g. the users and API keys of a configuration)
    /// against the last recorded snapshot: <c>{kind}.add</c>, <c>.remove</c>, <c>.role</c>, <c>.credential</c> entries
    /// (kind = the part of the name before ':'), then a new <c>directory.snapshot</c>, all by the system actor
    /// <paramref name="source"/>, in one transaction under an advisory lock so that replicas record a change once.
    /// Returns the number of changes recorded.
    /// </summary>
    public async Task<int> RecordDirectoryAsync(IReadOnlyDictionary<string, string> current, string source, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(current);
        await using var conn = await dataSource.OpenConnectionAsync(ct);
        await using var tx = await conn.BeginTransactionAsync(ct);
        await using (var lockCmd = new NpgsqlCommand($"SELECT pg_advisory_xact_lock({DirectoryLockKey})", conn, tx))
        {
            await lockCmd.ExecuteNonQueryAsync(ct);
        }

        var previous = new Dictionary<string, string>(StringComparer.Ordinal);
        var hadSnapshot = false;
        await using (var cmd = new NpgsqlCommand("SELECT detail::text FROM pf_audit WHERE action = 'directory.snapshot' ORDER BY id DESC LIMIT 1", conn, tx))
        {
            if (await cmd.ExecuteScalarAsync(ct) is string json)
            {
                previous = JsonSerializer.Deserialize<Dictionary<string, string>>(json) ?? previous;
                hadSnapshot = true;
            }
        }

        var changes = DirectoryChanges(previous, current);
        if (changes.Count == 0 && (hadSnapshot || current.Count == 0))
        {
            return 0;
        }

        foreach (var (action, target, detail) in changes)
        {
            await InsertSystemAsync(conn, tx, source, action, target, JsonSerializer.Serialize(detail), ct);
        }

        await InsertSystemAsync(conn, tx, source, "directory.snapshot", null, JsonSerializer.Serialize(current), ct);
        await tx.CommitAsync(ct);
        return changes.Count;
    }

    /// <summary>The differences between two directories, as audit actions.</summary>
    public static List<(string Action, string Target, Dictionary<string, string?> Detail)> DirectoryChanges(
        IReadOnlyDictionary<string, string> previous, IReadOnlyDictionary<string, string> current)
    {
        ArgumentNullException.ThrowIfNull(previous);
        ArgumentNullException.ThrowIfNull(current);
        var changes = new List<(string, string, Dictionary<string, string?>)>();
        foreach (var (key, value) in current.OrderBy(k => k.Key, StringComparer.Ordinal))
        {
            var (kind, name) = Split(key);
            var (role, fingerprint) = Split(value);
            if (!previous.TryGetValue(key, out var before))
            {
                changes.Add(($"{kind}.add", name, new() { ["role"] = role }));
                continue;
            }

            var (oldRole, oldFingerprint) = Split(before);
            if (oldRole != role)
            {
                changes.Add(($"{kind}.role", name, new() { ["from"] = oldRole, ["to"] = role }));
            }

            if (oldFingerprint != fingerprint)
            {
                changes.Add(($"{kind}.credential", name, new() { ["role"] = role }));
            }
        }

        foreach (var key in previous.Keys.Where(k => !current.ContainsKey(k)).Order(StringComparer.Ordinal))
        {
            var (kind, name) = Split(key);
            changes.Add(($"{kind}.remove", name, new()));
        }

        return changes;
    }

    private static (string, string) Split(string s)
    {
        var i = s.IndexOf(':', StringComparison.Ordinal);
        return i < 0 ? (s, "") : (s[..i], s[(i + 1)..]);
    }

    private static async Task InsertSystemAsync(NpgsqlConnection conn, NpgsqlTransaction tx, string source, string action, string? target, string detail, CancellationToken ct)
    {
        await using var cmd = new NpgsqlCommand("""
            INSERT INTO pf_audit (actor_kind, actor, action, target, outcome, detail) VALUES ('system', $1, $2, $3, 0, $4::jsonb)
            """, conn, tx);
        cmd.Parameters.Add(new() { Value = source });
        cmd.Parameters.Add(new() { Value = action });
        cmd.Parameters.Add(new() { Value = (object?)target ?? DBNull.Value, NpgsqlDbType = NpgsqlDbType.Text });
        cmd.Parameters.Add(new() { Value = detail });
        await cmd.ExecuteNonQueryAsync(ct);
    }
}
