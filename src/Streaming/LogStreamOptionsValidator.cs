using Microsoft.Extensions.Options;

namespace PumpFleet.Streaming;

/// <summary>Checks <see cref="LogStreamOptions"/> at start-up (registered with <c>ValidateOnStart</c>).</summary>
public sealed class LogStreamOptionsValidator : IValidateOptions<LogStreamOptions>
{
    /// <inheritdoc />
    public ValidateOptionsResult Validate(string? name, LogStreamOptions o)
    {
        ArgumentNullException.ThrowIfNull(o);
        var errors = new List<string>();
        if (o.PageSize is < 1 or > 10_000)
        {
            errors.Add($"Streaming:PageSize must be between 1 and 10,000, not {o.PageSize}.");
        }

        if (o.MaxUndelivered is < 16 or > 1_000_000)
        {
            errors.Add($"Streaming:MaxUndelivered must be between 16 and 1,000,000, not {o.MaxUndelivered}.");
        }

        if (o.RewindWindow is < 0 or > 10_000_000)
        {
            errors.Add($"Streaming:RewindWindow must be between 0 and 10,000,000, not {o.RewindWindow}.");
        }

        if (o.AgentPeriod <= TimeSpan.Zero || o.AgentPeriod > TimeSpan.FromSeconds(10))
        {
            errors.Add($"Streaming:AgentPeriod must be above 0 and at most 10 s, not {o.AgentPeriod}.");
        }

        if (o.PollInterval < o.AgentPeriod || o.PollInterval > TimeSpan.FromMinutes(5))
        {
            errors.Add($"Streaming:PollInterval must be at least Streaming:AgentPeriod (a receiver is only asked that often) and at most 5 min, not {o.PollInterval}.");
        }

        if (o.CheckpointInterval < TimeSpan.Zero || o.CheckpointInterval > TimeSpan.FromMinutes(5))
        {
            errors.Add($"Streaming:CheckpointInterval must be between 0 and 5 min, not {o.CheckpointInterval}.");
        }

        return errors.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(errors);
    }
}
