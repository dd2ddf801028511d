using System.Globalization;
using PumpFleet.Domain.Detection;
using PumpFleet.Domain.Statistics;

namespace PumpFleet.Grains.Detection.Fleet;

/// <summary>One cohort's exposure and counts, as the cohort read model (src/ReadModels) keeps them.</summary>
public sealed record CohortStats(string Model, string Firmware, string Lot, long Pumps, double PumpDays, long Alarms, long CriticalAlarms, long Anomalies)
{
    /// <summary>Stream of the cohort's own anomalies.</summary>
    public string StreamId => $"cohort:{Model}:{Firmware}:{Lot}";
}

/// <summary>A cohort measure that is significantly above the rest of the fleet.</summary>
public sealed record CohortFinding(CohortStats Cohort, string Measure, long Count, double RatePer1000, double RestRatePer1000, double LowerBoundPer1000, double PValue)
{
    /// <summary>One sentence for a human.</summary>
    public string Summary => string.Create(CultureInfo.InvariantCulture,
        $"Cohort {Cohort.Model} / firmware {Cohort.Firmware} / lot {Cohort.Lot}: {Count} {Measure} in {Cohort.PumpDays:0} pump-days = {RatePer1000:0.##} per 1000 pump-days (lower 95 % bound {LowerBoundPer1000:0.##}) against {RestRatePer1000:0.##} in the rest of the fleet; exact Poisson p = {PValue:0.####}, {BenjaminiHochberg.MethodName} q = {QValue:0.####} across {Tests} cohort × measure tests.");

    /// <summary>Benjamini–Hochberg adjusted p-value across every cohort × measure tested in the run.</summary>
    public double QValue { get; init; } = double.NaN;

    /// <summary>How many cohort × measure tests the run adjusted over.</summary>
    public int Tests { get; init; }

    /// <summary>The numbers used.</summary>
    public Dictionary<string, double> Evidence => new(StringComparer.Ordinal)
    {
        ["count"] = Count,
        ["pumps"] = Cohort.Pumps,
        ["pumpDays"] = Math.Round(Cohort.PumpDays, 2),
        ["ratePer1000PumpDays"] = Math.Round(RatePer1000, 4),
        ["restRatePer1000PumpDays"] = Math.Round(RestRatePer1000, 4),
        ["lowerBoundPer1000PumpDays"] = Math.Round(LowerBoundPer1000, 4),
        ["rateRatio"] = RestRatePer1000 > 0 ? Math.Round(RatePer1000 / RestRatePer1000, 3) : -1,   // -1: none in the rest of the fleet
        ["pValue"] = PValue,
        ["qValue"] = QValue,
        ["tests"] = Tests,
        ["falseDiscoveryControl"] = 1,   // 1 = Benjamini–Hochberg across cohorts and measures (see docs/detection.md)
    };
}

/// <summary>
/// Fleet cohort signals (§7.4): for each model × firmware × lot and each measure (critical alarms,
/// alarms, anomalies), the cohort's count is tested against the rate of the rest of the fleet with the exact
/// one-sided Poisson test (expected = rest-of-fleet rate × the cohort's pump-days). A signal needs at least the
/// minimum count (N ≥ 3 [S4]) and p below alpha, which is the same as the exact lower (1 − alpha) bound of the
/// cohort's rate lying above the rest of the fleet's.
/// </summary>
public static class CohortSignals
{
    /// <summary>The measures tested, worst first (a cohort keeps one open signal, carrying its strongest measure).</summary>
    public static readonly IReadOnlyList<string> Measures = ["critical alarms", "anomalies", "alarms"];

    /// <summary>
    /// The strongest finding per cohort, or none. Every cohort × measure with at least the minimum count is a test;
    /// the tests' p-values are adjusted together by Benjamini–Hochberg, and a test signals when its adjusted value
    /// (q) is below alpha, so alpha bounds the expected share of false signals among those raised rather than the
    /// chance of each test.
    /// </summary>
    public static IReadOnlyDictionary<CohortStats, CohortFinding?> Evaluate(IReadOnlyList<CohortStats> cohorts, AnomalyDetectionOptions o)
    {
        ArgumentNullException.ThrowIfNull(cohorts);
        ArgumentNullException.ThrowIfNull(o);
        var result = new Dictionary<CohortStats, CohortFinding?>();
        var totalDays = cohorts.Sum(c => c.PumpDays);
        var tests = new List<(CohortStats Cohort, string Measure, long Count, double RestRate, double P)>();
        foreach (var c in cohorts)
        {
            result[c] = null;
            var restDays = totalDays - c.PumpDays;
            foreach (var measure in Measures)
            {
                var count = Count(c, measure);
                var restCount = cohorts.Sum(x => Count(x, measure)) - count;
                if (count < o.CohortMinCount || c.PumpDays <= 0 || restDays <= 0)
                {
                    continue;
                }

                var restRate = restCount / restDays;
                tests.Add((c, measure, count, restRate, PoissonTest.UpperTail(count, restRate * c.PumpDays)));
            }
        }

        var q = BenjaminiHochberg.Adjust([.. tests.Select(t => t.P)]);
        for (var i = 0; i < tests.Count; i++)
        {
            var (c, measure, count, restRate, p) = tests[i];
            if (q[i] >= o.CohortAlpha)
            {
                continue;
            }

            var finding = new CohortFinding(c, measure, count, 1000 * count / c.PumpDays, 1000 * restRate,
                1000 * PoissonTest.LowerBound(count, o.CohortAlpha) / c.PumpDays, p)
            {
                QValue = q[i], Tests = tests.Count,
            };
            if (result[c] is not { } best || finding.PValue < best.PValue)
            {
                result[c] = finding;
            }
        }

        return result;
    }

    private static long Count(CohortStats c, string measure) => measure switch
    {
        "critical alarms" => c.CriticalAlarms,
        "anomalies" => c.Anomalies,
        _ => c.Alarms,
    };
}
