using System.Collections.Concurrent;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Npgsql;
using PumpFleet.EventStore;
using PumpFleet.Gateway.Hosting;
using PumpFleet.Gateway.Ingest;

namespace PumpFleet.Gateway.Hubs;

/// <summary>Told when hubs' credentials changed (revoked, rotated, created).</summary>
public interface IHubRegistryListener
{
    /// <summary>
    /// <paramref name="hubIds"/> changed; null means "anything may have changed" (the periodic re-check, or a
    /// reconnect of the listening connection). The listener re-reads the registry; it must not throw for a hub it
    /// does not know.
    /// </summary>
    Task OnHubsChangedAsync(IReadOnlyCollection<string>? hubIds, CancellationToken ct);
}

/// <summary>
/// Makes revocation and rotation take effect at once on every gateway instance. A trigger on
/// <c>pf_gateway_hubs</c> (018_hub_registry_changes.sql) sends <c>NOTIFY pf_gateway_hubs, '&lt;hub id&gt;'</c> on
/// every credential change, whoever made it; this service LISTENs on its own connection (unpooled: see
/// <see cref="UnpooledConnections"/>) and tells the broker of this
/// instance (<see cref="IHubRegistryListener"/>), which re-reads the rows and ends the sessions that are no longer
/// valid. Because a notification is lost while the connection is down, every (re)connect and every
/// <c>RegistryRecheckInterval</c> triggers a full re-check as well. It also keeps the set of revoked hub ids, so
/// external mode refuses a revoked hub's messages even before the broker's files are reloaded.
/// </summary>
public sealed partial class HubRegistryWatcher(
    UnpooledConnections connections,
    HubStore store,
    IServiceProvider services,
    IOptions<HubAuthOptions> options,
    GatewayInstruments instruments,
    TimeProvider time,
    ILogger<HubRegistryWatcher> logger) : BackgroundService
{
    /// <summary>The notification channel of the trigger.</summary>
    public const string Channel = "pf_gateway_hubs";

    private static readonly TimeSpan InitialBackoff = TimeSpan.FromMilliseconds(200);
    private static readonly TimeSpan MaxBackoff = TimeSpan.FromSeconds(10);
    private readonly TaskCompletionSource _ready = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private ConcurrentDictionary<string, bool> _revoked = new(StringComparer.Ordinal);

    /// <summary>True when <paramref name="hubId"/> is known to be revoked.</summary>
    public bool IsRevoked(string hubId) => _revoked.ContainsKey(hubId);

    /// <summary>Completes once the revoked set was loaded and the channel is listened to.</summary>
    public Task WaitReadyAsync(CancellationToken ct) => _ready.Task.WaitAsync(ct);

    /// <inheritdoc />
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var listeners = services.GetServices<IHubRegistryListener>().ToList();
        var backoff = InitialBackoff;
        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                // Once listening and re-checked, the next failure is retried promptly again: the backoff is for a
                // database that stays down, not a penalty that grows over the life of the process.
                await ListenAsync(listeners, () => backoff = InitialBackoff, stoppingToken);
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                break;
            }
            catch (Exception e) when (e is not OutOfMemoryException)
            {
                // Until the connection is back, sessions of revoked hubs may stay open on this instance: say so.
                instruments.OnDependencyFailure(Dependencies.PostgreSql);
                LogListenFailed(backoff, e);
                await Task.Delay(backoff, time, stoppingToken).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
                backoff = TimeSpan.FromTicks(Math.Min(backoff.Ticks * 2, MaxBackoff.Ticks));
            }
        }
    }

    private async Task ListenAsync(List<IHubRegistryListener> listeners, Action listening, CancellationToken ct)
    {
        await using var conn = await connections.OpenAsync(ct);
        var changed = new HashSet<string>(StringComparer.Ordinal);
        conn.Notification += (_, n) =>
        {
            if (n.Channel == Channel)
            {
                changed.Add(n.Payload);
            }
        };
        await using (var listen = new NpgsqlCommand($"LISTEN {Channel}", conn))
        {
            await listen.ExecuteNonQueryAsync(ct);
        }

        // Listening from here on; whatever changed before (or while the previous connection was down) is caught by
        // this full re-check.
        await RecheckAllAsync(listeners, ct);
        _ready.TrySetResult();
        listening();
        var interval = options.Value.RegistryRecheckInterval;
        var next = time.GetUtcNow() + interval;
        while (!ct.IsCancellationRequested)
        {
            var wait = next - time.GetUtcNow();
            if (wait > TimeSpan.Zero)
            {
                // Notifications are raised on this thread, inside WaitAsync. Npgsql takes whole milliseconds and
                // treats 0 as "wait forever": never let a remainder below 1 ms truncate to 0 (WaitTimeout).
                await conn.WaitAsync(WaitTimeout(wait), ct);
            }

            if (changed.Count > 0)
            {
                var ids = changed.ToList();
                changed.Clear();
                await OnChangedAsync(listeners, ids, ct);
            }

            if (time.GetUtcNow() >= next)
            {
                await RecheckAllAsync(listeners, ct);
                next = time.GetUtcNow() + interval;
            }
        }
    }

    /// <summary>
    /// The timeout for <see cref="NpgsqlConnection.WaitAsync(int, CancellationToken)"/> until the next re-check:
    /// <paramref name="remaining"/> rounded up to whole milliseconds, at least 1. Npgsql's own
    /// <c>WaitAsync(TimeSpan)</c> truncates, and its 0 means no timeout at all: a remainder below 1 ms (a wait that
    /// ended a fraction early) then blocked until the next notification, so without notifications the periodic
    /// re-check stopped for good.
    /// </summary>
    internal static int WaitTimeout(TimeSpan remaining) =>
        (int)Math.Clamp(Math.Ceiling(remaining.TotalMilliseconds), 1, int.MaxValue);

    private async Task OnChangedAsync(List<IHubRegistryListener> listeners, List<string> ids, CancellationToken ct)
    {
        foreach (var id in ids)
        {
            if (await store.FindAsync(id, ct) is { RevokedAt: not null })
            {
                _revoked[id] = true;
            }
        }

        LogChanged(ids.Count, string.Join(", ", ids.Take(10)));
        await NotifyAsync(listeners, ids, ct);
    }

    private async Task RecheckAllAsync(List<IHubRegistryListener> listeners, CancellationToken ct)
    {
        var revoked = await store.RevokedAsync(ct);
        _revoked = new ConcurrentDictionary<string, bool>(revoked.Select(r => KeyValuePair.Create(r, true)), StringComparer.Ordinal);
        await NotifyAsync(listeners, null, ct);
    }

    private async Task NotifyAsync(List<IHubRegistryListener> listeners, IReadOnlyCollection<string>? ids, CancellationToken ct)
    {
        foreach (var l in listeners)
        {
            try
            {
                await l.OnHubsChangedAsync(ids, ct);
            }
            catch (Exception e) when (e is not (OperationCanceledException or OutOfMemoryException or NpgsqlException))
            {
                // One listener's failure must not stop the others nor the listening; the next re-check retries it.
                LogListenerFailed(l.GetType().Name, e);
            }
        }
    }

    [LoggerMessage(Level = LogLevel.Error, Message = "Cannot listen for hub registry changes; retrying in {Backoff} (revocations reach this gateway only after it is back)")]
    private partial void LogListenFailed(TimeSpan backoff, Exception e);

    [LoggerMessage(Level = LogLevel.Information, Message = "Hub registry changed for {Count} hub(s): {HubIds}")]
    private partial void LogChanged(int count, string hubIds);

    [LoggerMessage(Level = LogLevel.Error, Message = "A hub registry listener ({Listener}) failed; the next re-check retries it")]
    private partial void LogListenerFailed(string listener, Exception e);
}
