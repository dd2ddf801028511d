using Microsoft.Extensions.Options;

namespace PumpFleet.Grains.Pumps;

/// <summary>Checks <see cref="PumpGrainOptions"/> at start-up (registered with <c>ValidateOnStart</c>).</summary>
public sealed class PumpGrainOptionsValidator : IValidateOptions<PumpGrainOptions>
{
    /// <inheritdoc />
    public ValidateOptionsResult Validate(string? name, PumpGrainOptions o)
    {
        ArgumentNullException.ThrowIfNull(o);
        var errors = new List<string>();
        if (o.SnapshotEvery is < 10 or > 100_000)
        {
            errors.Add($"PumpFleet:Pumps:SnapshotEvery must be between 10 and 100,000, not {o.SnapshotEvery}.");
        }

        if (o.SeqWindow is < 1 or > (1L << 52))
        {
            errors.Add($"PumpFleet:Pumps:SeqWindow must be between 1 and 2^52, not {o.SeqWindow}.");
        }

        if (o.SnapshotHistoryEvery is < 10 or > 1_000_000)
        {
            errors.Add($"PumpFleet:Pumps:SnapshotHistoryEvery must be between 10 and 1,000,000, not {o.SnapshotHistoryEvery}.");
        }

        return errors.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(errors);
    }
}
