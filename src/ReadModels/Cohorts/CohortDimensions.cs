namespace PumpFleet.ReadModels;

/// <summary>
/// The dimensions a cohort can be grouped by, in their canonical order, and the SQL that computes each from a
/// <c>pf_cohort_members</c> row. Implant age is the pump's age at its last report, in bands chosen after the
/// failure facts of the domain notes (§3: over-infusion from 5 months, battery events at 45–78 months, stall rising
/// with time since implant).
/// </summary>
public static class CohortDimensions
{
    /// <summary>Every dimension, canonical order.</summary>
    public static readonly IReadOnlyList<string> All = ["model", "firmware", "lot", "indication", "drug", "phase", "implantAge"];

    /// <summary>The dimensions survival curves may be grouped by (phase and implant age are the curve's own axis).</summary>
    public static readonly IReadOnlyList<string> Survival = ["model", "firmware", "lot", "indication", "drug"];

    /// <summary>The value shown for a pump that has not reported the dimension.</summary>
    public const string Unknown = "unknown";

    /// <summary>Implant-age bands, youngest first; pumps with no implant date are <c>not implanted</c>.</summary>
    public static readonly IReadOnlyList<string> ImplantAgeBands = ["0-6 months", "6-12 months", "1-2 years", "2-5 years", "5+ years", "not implanted"];

    private const string AgeDays = "(extract(epoch FROM (last_event_at - implanted_at)) / 86400.0)";

    /// <summary>The SQL expression of a dimension (text) and the one it sorts by.</summary>
    internal static (string Value, string Order) Sql(string dimension) => dimension switch
    {
        "model" or "firmware" or "lot" => (dimension, dimension),
        "indication" or "drug" or "phase" => ($"coalesce({dimension}, '{Unknown}')", $"coalesce({dimension}, '{Unknown}')"),
        "implantAge" => (
            $"""
            CASE WHEN implanted_at IS NULL OR last_event_at IS NULL THEN '{ImplantAgeBands[5]}'
                 WHEN {AgeDays} < 182.625 THEN '{ImplantAgeBands[0]}' WHEN {AgeDays} < 365.25 THEN '{ImplantAgeBands[1]}'
                 WHEN {AgeDays} < 730.5 THEN '{ImplantAgeBands[2]}' WHEN {AgeDays} < 1826.25 THEN '{ImplantAgeBands[3]}'
                 ELSE '{ImplantAgeBands[4]}' END
            """,
            $"CASE WHEN implanted_at IS NULL OR last_event_at IS NULL THEN 1e9 ELSE {AgeDays} END"),
        _ => throw new ArgumentOutOfRangeException(nameof(dimension), dimension, "Not a cohort dimension."),
    };
}
