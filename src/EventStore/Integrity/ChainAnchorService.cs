using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Npgsql;

namespace PumpFleet.EventStore.Integrity;

/// <summary>Options of the chain anchor job (section <c>EventStore:Anchors</c>).</summary>
public sealed class ChainAnchorOptions
{
    /// <summary>Configuration section.</summary>
    public const string SectionName = "EventStore:Anchors";

    /// <summary>Write anchors at all. Default: true.</summary>
    public bool Enabled { get; set; } = true;

    /// <summary>How often an anchor is written (when events arrived since the last one). Default: 15 min.</summary>
    public TimeSpan Interval { get; set; } = TimeSpan.FromMinutes(15);
}

/// <summary>Periodically anchors the event chains (<see cref="ChainAnchorWriter"/>); runs in the silo.</summary>
internal sealed partial class ChainAnchorService(
    ChainAnchorWriter writer, IOptions<ChainAnchorOptions> options, TimeProvider time, ILogger<ChainAnchorService> logger) : BackgroundService
{
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        if (!options.Value.Enabled)
        {
            return;
        }

        using var timer = new PeriodicTimer(options.Value.Interval, time);
        do
        {
            try
            {
                if (await writer.AnchorAsync(stoppingToken) is { } anchor)
                {
                    LogAnchor(anchor.Id, anchor.Events, anchor.Streams, anchor.Digest);
                }
                else
                {
                    // Nothing new (or another silo holds the lock): the metric still shows the newest anchor.
                    await writer.RefreshAsync(stoppingToken);
                }
            }
            catch (Exception e) when (e is NpgsqlException or TimeoutException && !stoppingToken.IsCancellationRequested)
            {
                // The next tick tries again; the anchor metric's time shows the delay.
                LogFailed(e);
            }
        }
        while (await timer.WaitForNextTickAsync(stoppingToken));
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Event chain anchor {Id}: {Events} events, {Streams} stream heads, digest {Digest}")]
    private partial void LogAnchor(long id, long events, long streams, string digest);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Writing the event chain anchor failed")]
    private partial void LogFailed(Exception e);
}
