using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using PumpFleet.Gateway.Ingest;

namespace PumpFleet.Gateway.Quarantine;

/// <summary>Quarantine retention (section <c>Gateway:Quarantine</c>).</summary>
public sealed class QuarantineOptions
{
    /// <summary>Configuration section.</summary>
    public const string SectionName = "Gateway:Quarantine";

    /// <summary>Rows older than this are deleted. Default: 30 days.</summary>
    public TimeSpan Retention { get; set; } = TimeSpan.FromDays(30);

    /// <summary>At most this many rows are kept (the oldest beyond go first). Default: 1,000,000.</summary>
    public long MaxRows { get; set; } = 1_000_000;

    /// <summary>How often the purge runs. Default: 1 h.</summary>
    public TimeSpan PurgeInterval { get; set; } = TimeSpan.FromHours(1);
}

/// <summary>
/// Deletes quarantine rows past retention and beyond the row cap, every <see cref="QuarantineOptions.PurgeInterval"/>.
/// Rows are already capped in size when written (<see cref="QuarantineStore.MaxPayloadBytes"/>, <see cref="QuarantineStore.MaxTextLength"/>),
/// so the table is bounded: anyone can send bad input, and it must not fill the database.
/// </summary>
public sealed partial class QuarantinePurger(
    QuarantineStore store, IOptions<QuarantineOptions> options, GatewayInstruments instruments, TimeProvider time, ILogger<QuarantinePurger> logger)
    : BackgroundService
{
    /// <summary>One purge now; returns the rows deleted (the timer's body, public for tests and operators).</summary>
    public async Task<long> PurgeOnceAsync(CancellationToken ct)
    {
        var o = options.Value;
        var deleted = await store.PurgeAsync(time.GetUtcNow() - o.Retention, o.MaxRows, ct);
        if (deleted > 0)
        {
            instruments.OnQuarantinePurged(deleted);
            LogPurged(deleted);
        }

        return deleted;
    }

    /// <inheritdoc />
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(options.Value.PurgeInterval, time);
        try
        {
            do
            {
                try
                {
                    await PurgeOnceAsync(stoppingToken);
                }
                catch (Exception e) when (e is not OperationCanceledException)
                {
                    // The next tick tries again; nothing depends on a purge happening now.
                    instruments.OnDependencyFailure(Dependencies.PostgreSql);
                    LogPurgeFailed(e);
                }
            }
            while (await timer.WaitForNextTickAsync(stoppingToken));
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
            // Stopping.
        }
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Quarantine retention: {Deleted} rows deleted")]
    private partial void LogPurged(long deleted);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Quarantine retention purge failed; retrying at the next interval")]
    private partial void LogPurgeFailed(Exception e);
}
