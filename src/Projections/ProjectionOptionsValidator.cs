using Microsoft.Extensions.Options;

namespace PumpFleet.Projections;

/// <summary>Checks <see cref="ProjectionOptions"/> at start-up (registered with <c>ValidateOnStart</c>).</summary>
public sealed class ProjectionOptionsValidator : IValidateOptions<ProjectionOptions>
{
    /// <inheritdoc />
    public ValidateOptionsResult Validate(string? name, ProjectionOptions o)
    {
        ArgumentNullException.ThrowIfNull(o);
        var errors = new List<string>();
        if (o.Partitions is < 1 or > EventStore.Log.LogPartitioning.Count)
        {
            errors.Add($"Projections:Partitions must be between 1 and {EventStore.Log.LogPartitioning.Count} (the log's partitions), not {o.Partitions}.");
        }

        if (o.MaxAttempts is < 1 or > 100)
        {
            errors.Add($"Projections:MaxAttempts must be between 1 and 100, not {o.MaxAttempts}.");
        }

        if (o.RetryBackoff < TimeSpan.Zero || o.RetryBackoff > TimeSpan.FromMinutes(1))
        {
            errors.Add($"Projections:RetryBackoff must be between 0 and 1 min, not {o.RetryBackoff}.");
        }

        if (o.PageSize is < 1 or > 10_000)
        {
            errors.Add($"Projections:PageSize must be between 1 and 10,000, not {o.PageSize}.");
        }

        if (o.CombinedPageMaxEvents is < 1 or > 100_000)
        {
            errors.Add($"Projections:CombinedPageMaxEvents must be between 1 and 100,000, not {o.CombinedPageMaxEvents}.");
        }

        if (o.PollInterval < TimeSpan.FromMilliseconds(10) || o.PollInterval > TimeSpan.FromMinutes(10))
        {
            errors.Add($"Projections:PollInterval must be between 10 ms and 10 min, not {o.PollInterval}.");
        }

        if (o.CatchUpBudget < TimeSpan.FromMilliseconds(50) || o.CatchUpBudget > TimeSpan.FromMinutes(1))
        {
            errors.Add($"Projections:CatchUpBudget must be between 50 ms and 1 min, not {o.CatchUpBudget}.");
        }

        if (o.KeepAliveInterval < TimeSpan.FromSeconds(1) || o.KeepAliveInterval > TimeSpan.FromHours(1))
        {
            errors.Add($"Projections:KeepAliveInterval must be between 1 s and 1 h, not {o.KeepAliveInterval}.");
        }

        if (o.MetricsRefreshInterval < TimeSpan.FromMilliseconds(100) || o.MetricsRefreshInterval > TimeSpan.FromHours(1))
        {
            errors.Add($"Projections:MetricsRefreshInterval must be between 100 ms and 1 h, not {o.MetricsRefreshInterval}.");
        }

        return errors.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(errors);
    }
}
