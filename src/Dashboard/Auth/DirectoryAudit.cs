using System.Security.Cryptography;
using System.Text;
using Microsoft.Extensions.Options;
using PumpFleet.Dashboard.Hosting;
using PumpFleet.EventStore.Audit;

namespace PumpFleet.Dashboard.Auth;

/// <summary>
/// Users, API keys and their roles live in configuration (secrets of the deployment), not in a table the dashboard
/// writes, so their changes are audited where they become effective: at start and whenever the configuration reloads,
/// the current directory is compared with the last one recorded (<see cref="AuditLog.RecordDirectoryAsync"/>) and each
/// difference (user or key added, removed, re-roled, password or key replaced) becomes an audit entry. Only
/// fingerprints are recorded, never a secret.
/// </summary>
internal sealed partial class DirectoryAudit(AuditLog audit, IOptionsMonitor<DashboardOptions> options, ILogger<DirectoryAudit> logger)
    : IHostedService, IDisposable
{
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
            var changes = await audit.RecordDirectoryAsync(Snapshot(o), "configuration", CancellationToken.None);
            if (changes > 0)
            {
                LogRecorded(changes);
            }
        }
        catch (Exception e) when (e is System.Data.Common.DbException or TimeoutException)
        {
            // The next reload or start records the difference against the last snapshot that did get written.
            LogFailed(e);
        }
    }

    /// <summary>The directory as recorded: "user:name" / "apikey:name" → "role:fingerprint".</summary>
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

    [LoggerMessage(Level = LogLevel.Information, Message = "Recorded {Count} user and API key changes in the audit trail")]
    private partial void LogRecorded(int count);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Recording user and API key changes in the audit trail failed")]
    private partial void LogFailed(Exception e);
}
