using Microsoft.Extensions.Options;

namespace PumpFleet.ReadModels;

/// <summary>Options of the <c>cohorts</c> projection (section <c>Projections:Cohorts</c>).</summary>
public sealed class CohortProjectionOptions
{
    /// <summary>The configuration section.</summary>
    public const string SectionName = "Projections:Cohorts";

    /// <summary>
    /// The page shape measured in issue 14 (h14c), default on: events the model takes only the time of (doses,
    /// levels, status…) have just their <c>at</c> read from the JSON, not the whole payload deserialised; the page's
    /// members are read by key (an index lookup per serial) without row locks, which the partition's checkpoint lock
    /// makes redundant. Off: the earlier shape (every payload deserialised; <c>serial = ANY(…) FOR UPDATE</c>), kept
    /// so a benchmark can compare both in one run (ProjectionBench).
    /// </summary>
    public bool LeanPages { get; set; } = true;
}

/// <summary>
/// Checks <see cref="CohortProjectionOptions"/> at start-up (registered with <c>ValidateOnStart</c>, as every bound
/// options type). Its one switch has no invalid value (a value that is not a boolean fails in the binder, at start),
/// so the check is that the section bound at all.
/// </summary>
public sealed class CohortProjectionOptionsValidator : IValidateOptions<CohortProjectionOptions>
{
    /// <inheritdoc />
    public ValidateOptionsResult Validate(string? name, CohortProjectionOptions options) =>
        options is null
            ? ValidateOptionsResult.Fail("Projections:Cohorts did not bind.")
            : ValidateOptionsResult.Success;
}
