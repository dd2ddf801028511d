using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace PumpFleet.Projections;

/// <summary>
/// Runs one projection partition inside the cluster: Orleans places the grains over the silos, so more silos share
/// the work, and the <see cref="ProjectionKeeper"/> on every silo re-activates a grain whose silo died. All state is
/// in PostgreSQL (checkpoint and read model in one transaction), so a new activation continues where the last
/// committed page ended.
/// </summary>
public sealed partial class ProjectionGrain(ProjectionRunner runner, IOptions<ProjectionOptions> options, ILogger<ProjectionGrain> logger)
    : Grain, IProjectionGrain
{
    private string _name = "";
    private int _partition;
    private int _count = 1;

    /// <inheritdoc />
    public override Task OnActivateAsync(CancellationToken cancellationToken)
    {
        (_name, _partition, _count) = Partitioning.ParseGrainKey(this.GetPrimaryKeyString());
        _ = runner.Get(_name);
        // KeepAlive: a projection has no callers; without it the idle collector would stop the polling.
        this.RegisterGrainTimer(static (self, ct) => self.TickAsync(ct), this, new GrainTimerCreationOptions
        {
            DueTime = TimeSpan.Zero,
            Period = options.Value.PollInterval,
            Interleave = false,
            KeepAlive = true,
        });
        return base.OnActivateAsync(cancellationToken);
    }

    /// <inheritdoc />
    public Task EnsureRunningAsync() => Task.CompletedTask;

    /// <inheritdoc />
    public Task<int> CatchUpAsync() => runner.CatchUpAsync(_name, _partition, _count, options.Value.CatchUpBudget, CancellationToken.None);

    private async Task TickAsync(CancellationToken ct)
    {
        try
        {
            await runner.CatchUpAsync(_name, _partition, _count, options.Value.CatchUpBudget, ct);
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            // The failed page rolled back; the next tick retries it from the committed checkpoint.
            LogPageFailed(e, _name, _partition, _count);
        }
    }

    [LoggerMessage(Level = LogLevel.Error, Message = "Projection {Name} partition {Partition}/{Count}: page failed and rolled back; retrying at the next poll")]
    private partial void LogPageFailed(Exception e, string name, int partition, int count);
}
