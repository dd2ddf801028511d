using Microsoft.Extensions.Options;

namespace PumpFleet.ReadModels;

/// <summary>Options of the partition tallies kept from the log stream (section <c>Projections:Tallies</c>; <see cref="PartitionTallyGrain{TTally, TMember}"/>).</summary>
public sealed class PartitionTallyOptions
{
    /// <summary>Configuration section.</summary>
    public const string SectionName = "Projections:Tallies";

    /// <summary>
    /// How often a tally grain saves its changed pumps and then its checkpoint (and always when it deactivates), 100 ms
    /// to 10 min. What the fleet jobs ask is the grain's memory, not the saved rows: the save is only where a new
    /// activation (a silo lost, the partition moved) starts from, and it reads the partition from the saved checkpoint
    /// on, so a longer interval costs a longer read then, never an event. Under load every partition's pumps change
    /// every second, so each save is an upsert of all of them and a checkpoint write, 32 grains × 2 transactions a
    /// second at 1 s (docs/benchmarks.md, "The readers' transactions per message"). Default: 5 s (1 s before 2026-12-01).
    /// </summary>
    public TimeSpan FlushInterval { get; set; } = TimeSpan.FromSeconds(5);
}

/// <summary>Checks <see cref="PartitionTallyOptions"/> at start-up (registered with <c>ValidateOnStart</c>).</summary>
public sealed class PartitionTallyOptionsValidator : IValidateOptions<PartitionTallyOptions>
{
    /// <inheritdoc />
    public ValidateOptionsResult Validate(string? name, PartitionTallyOptions o)
    {
        ArgumentNullException.ThrowIfNull(o);
        return o.FlushInterval < TimeSpan.FromMilliseconds(100) || o.FlushInterval > TimeSpan.FromMinutes(10)
            ? ValidateOptionsResult.Fail($"{PartitionTallyOptions.SectionName}:FlushInterval must be between 100 ms and 10 min, not {o.FlushInterval}.")
            : ValidateOptionsResult.Success;
    }
}
