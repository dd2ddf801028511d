namespace PumpFleet.Projections;

/// <summary>One partition of one projection, alive as long as the cluster runs. Key: <c>name/partition/count</c>.</summary>
[Alias("pumpfleet.IProjectionGrain")]
public interface IProjectionGrain : IGrainWithStringKey
{
    /// <summary>Activates the grain (its timer then polls the log); idempotent.</summary>
    [Alias("EnsureRunning")]
    Task EnsureRunningAsync();

    /// <summary>Catches up now instead of at the next poll; returns the events applied.</summary>
    [Alias("CatchUp")]
    Task<int> CatchUpAsync();
}
