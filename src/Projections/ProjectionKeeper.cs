using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace PumpFleet.Projections;

/// <summary>
/// Runs on every silo: activates every projection grain at start and again every
/// <see cref="ProjectionOptions.KeepAliveInterval"/>. Activation is idempotent, so N silos doing this cost N cheap calls;
/// a grain lost with a dead silo comes back on a live one at the next round. Reminders would need the reminder
/// service configured in every deployment; this needs nothing.
/// </summary>
public sealed partial class ProjectionKeeper(
    IGrainFactory grains, ProjectionRunner runner, IOptions<ProjectionOptions> options, ILogger<ProjectionKeeper> logger) : BackgroundService
{
    /// <summary>The grain keys of every projection partition.</summary>
    public IEnumerable<string> Keys()
    {
        var n = options.Value.Partitions;
        foreach (var name in runner.Names)
        {
            for (var p = 0; p < n; p++)
            {
                yield return Partitioning.GrainKey(name, p, n);
            }
        }
    }

    /// <inheritdoc />
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        if (!options.Value.Enabled)
        {
            return;
        }

        while (!stoppingToken.IsCancellationRequested)
        {
            TimeSpan next;
            try
            {
                await Task.WhenAll(Keys().Select(k => grains.GetGrain<IProjectionGrain>(k).EnsureRunningAsync()));
                next = options.Value.KeepAliveInterval;
            }
            catch (Exception e) when (e is not OperationCanceledException && e is not OutOfMemoryException)
            {
                // Typically the silo is still joining the cluster at start-up: try again soon.
                LogActivateFailed(e);
                next = TimeSpan.FromSeconds(1);
            }

            try
            {
                await Task.Delay(next, stoppingToken);
            }
            catch (OperationCanceledException)
            {
                return;
            }
        }
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Could not activate the projection grains; retrying")]
    private partial void LogActivateFailed(Exception e);
}
