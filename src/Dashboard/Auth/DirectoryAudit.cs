using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Microsoft.Extensions.Options;
using Npgsql;
using PumpFleet.Dashboard.Hosting;

namespace PumpFleet.Dashboard.Auth;

/// <summary>
/// Users, API keys and their roles live in configuration (secrets of the deployment), not in a table the dashboard
/// writes, so their changes are audited where they become effective: at start and whenever the configuration reloads,
/// the current directory is compared with the last one recorded and each difference (user or key added, removed,
/// re-roled, password or key replaced) becomes an audit entry, followed by a new <c>directory.snapshot</c>. One replica
/// at a time (advisory lock), so several replicas record a change once.
/// </summary>
internal sealed partial class DirectoryAudit(
    NpgsqlDataSource dataSource, IOptionsMonitor<DashboardOptions> options, ILogger<DirectoryAudit> logger) : IHostedService, IDisposable
{
    // "PFDIRAUD" as a 64-bit advisory lock key.
    private const long LockKey = 0x5046_4449_5241_5544;
    private IDisposable? _subscription;

    public async Task StartAsync(CancellationToken cancellationToken)
    {
        await RecordSafelyAsync(options.CurrentValue);
        _subscription = options.OnChange(o => _ = RecordSafelyAsync(o));
    }

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public void Dispose() => _subscription?.Dispose();

    private async Task RecordSafelyAsync(DashboardOptions o)
    {
        try
        {
            await RecordAsync(o, CancellationToken.None);
        }
        catch (Exception e) when (e is NpgsqlException or TimeoutException)
        {
            // The next reload or start records the difference against the last snapshot that did get written.
            LogFailed(e);
        }
    }

    /// <summary>The directory as recorded: name → "role:fingerprint" (of the password hash or the key, never the secret).</summary>
    internal static Dictionary<string, string> Snapshot(DashboardOptions o)
    {
        var d = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var (name, u) in o.Auth.Users)
        {
            d["user:" + name] = $"{u.Role}:{Fingerprint(u.PasswordHash)}";
        }

        foreach (var (name, key) in o.Auth.ApiKeys)
        {
            d["apikey:" + name] = $"{o.Auth.ApiKeyRoles.GetValueOrDefault(name, Roles.Viewer)}:{Fingerprint("key:" + key)}";
        }

        return d;
    }

    private static string Fingerprint(string s) => Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(s)))[..16];

    internal async Task RecordAsync(DashboardOptions o, CancellationToken ct)
    {
        var current = Snapshot(o);
        await using var conn = await dataSource.OpenConnectionAsync(ct);
        await using var tx = await conn.BeginTransactionAsync(ct);
        await using (var lockCmd = new NpgsqlCommand($"SELECT pg_advisory_xact_lock({LockKey})", conn, tx))
        {
            await lockCmd.ExecuteNonQueryAsync(ct);
        }

        Dictionary<string, string> previous = new(StringComparer.Ordinal);
        await using (var cmd = new NpgsqlCommand("SELECT detail::text FROM pf_audit WHERE action = 'directory.snapshot' ORDER BY id DESC LIMIT 1", conn, tx))
        {
            if (await cmd.ExecuteScalarAsync(ct) is string json)
            {
                previous = JsonSerializer.Deserialize<Dictionary<string, string>>(json) ?? previous;
            }
        }

        var changes = new List<(string Action, string Target, Dictionary<string, string?> Detail)>();
        foreach (var (key, value) in current)
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

        foreach (var key in previous.Keys.Where(k => !current.ContainsKey(k)))
        {
            var (kind, name) = Split(key);
            changes.Add(($"{kind}.remove", name, new()));
        }

        if (changes.Count == 0 && previous.Count == current.Count)
        {
            return;
        }

        foreach (var (action, target, detail) in changes)
        {
            await InsertAsync(conn, tx, action, target, JsonSerializer.Serialize(detail), ct);
        }

        await InsertAsync(conn, tx, "directory.snapshot", null, JsonSerializer.Serialize(current), ct);
        await tx.CommitAsync(ct);
        LogRecorded(changes.Count);
    }

    private static (string, string) Split(string s)
    {
        var i = s.IndexOf(':', StringComparison.Ordinal);
        return (s[..i], s[(i + 1)..]);
    }

    private static async Task InsertAsync(NpgsqlConnection conn, NpgsqlTransaction tx, string action, string? target, string detail, CancellationToken ct)
    {
        await using var cmd = new NpgsqlCommand("""
            INSERT INTO pf_audit (actor_kind, actor, action, target, outcome, detail) VALUES ('system', 'configuration', $1, $2, 0, $3::jsonb)
            """, conn, tx);
        cmd.Parameters.Add(new() { Value = action });
        cmd.Parameters.Add(new() { Value = (object?)target ?? DBNull.Value, NpgsqlDbType = NpgsqlTypes.NpgsqlDbType.Text });
        cmd.Parameters.Add(new() { Value = detail });
        await cmd.ExecuteNonQueryAsync(ct);
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Recorded {Count} user and API key changes in the audit trail")]
    private partial void LogRecorded(int count);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Recording user and API key changes in the audit trail failed")]
    private partial void LogFailed(Exception e);
}
