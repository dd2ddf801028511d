using System.Collections.Concurrent;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using PumpFleet.Gateway.Hubs;

namespace PumpFleet.Gateway.Ingest;

/// <summary>
/// Remembers when each hub last sent something and writes it to <c>pf_gateway_hub_status</c> every few seconds, so
/// silent-hub detection has a last-seen time without one database write per message.
/// </summary>
public sealed partial class HubActivityTracker(HubStore store, GatewayInstruments instruments, ILogger<HubActivityTracker> logger) : BackgroundService
{
    private ConcurrentDictionary<string, DateTimeOffset> _pending = new(StringComparer.Ordinal);

    /// <summary>How often pending last-seen times are written.</summary>
    public static TimeSpan FlushInterval { get; } = TimeSpan.FromSeconds(5);

    /// <summary>Notes that <paramref name="hubId"/> was seen at <paramref name="at"/>.</summary>
    public void Seen(string hubId, DateTimeOffset at) =>
        _pending.AddOrUpdate(hubId, at, (_, old) => old > at ? old : at);

    /// <summary>Writes what is pending now.</summary>
    public async Task FlushAsync(CancellationToken ct)
    {
        var batch = Interlocked.Exchange(ref _pending, new ConcurrentDictionary<string, DateTimeOffset>(StringComparer.Ordinal));
        if (batch.IsEmpty)
        {
            return;
        }

        try
        {
            await store.TouchAsync(batch, ct);
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            // Put the times back: they are written with the next flush once PostgreSQL is back.
            foreach (var (hub, at) in batch)
            {
                Seen(hub, at);
            }

            instruments.OnDependencyFailure(Dependencies.PostgreSql);
            LogFlushFailed(e);
        }
    }

    /// <inheritdoc />
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(FlushInterval);
        try
        {
            while (await timer.WaitForNextTickAsync(stoppingToken))
            {
                await FlushAsync(stoppingToken);
            }
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
        }

        await FlushAsync(CancellationToken.None);
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Could not record hub last-seen times; retrying with the next flush")]
    private partial void LogFlushFailed(Exception e);
}
