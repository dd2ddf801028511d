using System.Diagnostics.Metrics;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace PumpFleet.Gateway.Quarantine;

/// <summary>
/// <c>pumpfleet.quarantine.size</c> (meter <see cref="GatewayInstruments.MeterName"/>): rows in the gateway's
/// quarantine, asked of its owner, <see cref="QuarantineStore"/>. A scrape must not cost a query, so a background loop
/// refreshes the figure every <see cref="RefreshInterval"/> and the gauge reads the last value.
/// </summary>
public sealed partial class QuarantineGauge : BackgroundService
{
    /// <summary>How often the count is refreshed (the other fleet gauges' default refresh).</summary>
    public static readonly TimeSpan RefreshInterval = TimeSpan.FromSeconds(15);

    private readonly QuarantineStore _store;
    private readonly TimeProvider _time;
    private readonly ILogger<QuarantineGauge> _logger;
    private long _size;

    /// <summary>Creates the gauge.</summary>
    public QuarantineGauge(IMeterFactory meterFactory, QuarantineStore store, TimeProvider time, ILogger<QuarantineGauge> logger)
    {
        ArgumentNullException.ThrowIfNull(meterFactory);
        _store = store;
        _time = time;
        _logger = logger;
        meterFactory.Create(Ingest.GatewayInstruments.MeterName).CreateObservableGauge("pumpfleet.quarantine.size", () => Volatile.Read(ref _size),
            unit: "{message}", description: "Rows in the gateway's quarantine table (pf_gateway_quarantine; 0 before it exists).");
    }

    /// <summary>The last value read.</summary>
    public long Size => Volatile.Read(ref _size);

    /// <summary>Reads the count once.</summary>
    public async Task<long> RefreshAsync(CancellationToken ct)
    {
        var size = await _store.CountAsync(ct);
        Volatile.Write(ref _size, size);
        return size;
    }

    /// <inheritdoc />
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(RefreshInterval, _time);
        do
        {
            try
            {
                await RefreshAsync(stoppingToken);
            }
            catch (Exception e) when (e is not OperationCanceledException && e is not OutOfMemoryException)
            {
                // The gauge keeps the last good value; an outage shows up in the health checks, not as zero.
                LogRefreshFailed(e);
            }
        }
        while (await timer.WaitForNextTickAsync(stoppingToken));
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Refreshing the quarantine gauge failed; keeping the last value")]
    private partial void LogRefreshFailed(Exception e);
}
