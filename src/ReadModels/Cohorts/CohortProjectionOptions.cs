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
