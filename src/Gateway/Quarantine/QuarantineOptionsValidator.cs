using Microsoft.Extensions.Options;

namespace PumpFleet.Gateway.Quarantine;

/// <summary>Checks <see cref="QuarantineOptions"/> at start-up (registered with <c>ValidateOnStart</c>).</summary>
public sealed class QuarantineOptionsValidator : IValidateOptions<QuarantineOptions>
{
    /// <inheritdoc />
    public ValidateOptionsResult Validate(string? name, QuarantineOptions o)
    {
        ArgumentNullException.ThrowIfNull(o);
        var errors = new List<string>();
        if (o.Retention < TimeSpan.FromHours(1) || o.Retention > TimeSpan.FromDays(3650))
        {
            errors.Add($"Gateway:Quarantine:Retention must be between 1 h and 3650 d, not {o.Retention}.");
        }

        if (o.MaxRows < 1000)
        {
            errors.Add($"Gateway:Quarantine:MaxRows must be at least 1000, not {o.MaxRows}.");
        }

        if (o.PurgeInterval < TimeSpan.FromSeconds(1) || o.PurgeInterval > TimeSpan.FromDays(1))
        {
            errors.Add($"Gateway:Quarantine:PurgeInterval must be between 1 s and 1 d, not {o.PurgeInterval}.");
        }

        return errors.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(errors);
    }
}
