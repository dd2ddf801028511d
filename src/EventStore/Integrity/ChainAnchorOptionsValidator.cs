using Microsoft.Extensions.Options;

namespace PumpFleet.EventStore.Integrity;

/// <summary>Checks <see cref="ChainAnchorOptions"/> at start-up (registered with <c>ValidateOnStart</c>).</summary>
public sealed class ChainAnchorOptionsValidator : IValidateOptions<ChainAnchorOptions>
{
    /// <inheritdoc />
    public ValidateOptionsResult Validate(string? name, ChainAnchorOptions o)
    {
        ArgumentNullException.ThrowIfNull(o);
        var errors = new List<string>();
        if (o.Interval < TimeSpan.FromSeconds(1) || o.Interval > TimeSpan.FromDays(1))
        {
            errors.Add($"EventStore:Anchors:Interval must be between 1 s and 1 d, not {o.Interval}.");
        }

        return errors.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(errors);
    }
}
