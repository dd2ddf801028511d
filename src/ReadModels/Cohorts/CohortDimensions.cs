using PumpFleet.Domain.Statistics;

namespace PumpFleet.ReadModels;

/// <summary>
/// The dimensions a cohort can be grouped by, in their canonical order, and the SQL that computes each from a
/// <c>pf_cohort_members</c> row. Implant age is in bands chosen after the failure facts of the domain notes (§3:
/// over-infusion from 5 months, battery events at 45–78 months, stall rising with time since implant); the cohorts
/// split each pump's follow-up across the bands it lived through (<see cref="ImplantAgeSegmentsSql"/>); the
/// single-value expression of <see cref="Sql"/> is the band at the last report.
/// </summary>
public static class CohortDimensions
{
    /// <summary>Every dimension, canonical order.</summary>
    public static readonly IReadOnlyList<string> All = ["model", "firmware", "lot", "indication", "drug", "phase", "implantAge"];

    /// <summary>The dimensions survival curves may be grouped by (phase and implant age are the curve's own axis).</summary>
    public static readonly IReadOnlyList<string> Survival = ["model", "firmware", "lot", "indication", "drug"];

    /// <summary>The value shown for a pump that has not reported the dimension.</summary>
    public const string Unknown = "unknown";

    /// <summary>Implant-age bands, youngest first; pumps with no implant date are <c>not implanted</c> (<see cref="ImplantAge"/>).</summary>
    public static readonly IReadOnlyList<string> ImplantAgeBands = ImplantAge.Bands;

    /// <summary>
    /// SQL of one row per pump (of <c>m</c>, the members asked for) and implant-age band it spent follow-up in, after
    /// <see cref="ImplantAge.Split"/>: <c>band</c>, <c>band_order</c>, the band's time range <c>lo</c>..<c>hi</c> for
    /// this pump, <c>days</c> (the overlap of first..last trusted
    /// event time with the band), and <c>at_last</c> (the band of the last report, where a pump with no follow-up
    /// stays, as before the split).
    /// </summary>
    internal static string ImplantAgeSegmentsSql => $"""
        SELECT m.serial, b.band, b.ord AS band_order, b.lo, b.hi,
               (CASE WHEN m.first_event_at IS NULL OR m.last_event_at IS NULL THEN 0
                     ELSE greatest(0, extract(epoch FROM (least(m.last_event_at, b.hi) - greatest(m.first_event_at, b.lo))) / 86400.0) END)::float8 AS days,
               coalesce(m.last_event_at >= b.lo AND m.last_event_at < b.hi, b.band = '{ImplantAge.NotImplanted}') AS at_last
          FROM m CROSS JOIN LATERAL (
              SELECT * FROM (VALUES
                  ('{ImplantAge.NotImplanted}', 5, '-infinity'::timestamptz, coalesce(m.implanted_at, 'infinity'::timestamptz)),
                  {AgeBandRows}
              ) AS v(band, ord, lo, hi)
              WHERE v.band = '{ImplantAge.NotImplanted}' OR m.implanted_at IS NOT NULL) b
        """;

    // ('<band>', <order>, <start>, <end>) per age band, for a pump implanted at m.implanted_at (whole seconds: a year is 365.25 days).
    private static string AgeBandRows => string.Join(", ", ImplantAge.BandStartDays.Select((start, i) =>
        $"('{ImplantAge.Bands[i]}', {i}, m.implanted_at + interval '1 second' * {(long)(start * 86400)}, " +
        (i + 1 < ImplantAge.BandStartDays.Count ? $"m.implanted_at + interval '1 second' * {(long)(ImplantAge.BandStartDays[i + 1] * 86400)})" : "'infinity'::timestamptz)")));

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
