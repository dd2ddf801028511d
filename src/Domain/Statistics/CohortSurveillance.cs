namespace PumpFleet.Domain.Statistics;

/// <summary>One measure's counts in one cohort: events, and pumps with at least one event.</summary>
/// <param name="Events">Events counted (alarms, anomalies, …).</param>
/// <param name="PumpsAffected">Pumps with at least one such event.</param>
public readonly record struct MeasureCount(long Events, long PumpsAffected);

/// <summary>A cohort's exposure and its counts, one per measure (the same measures, in the same order, for every cohort).</summary>
/// <param name="Pumps">Pumps in the cohort.</param>
/// <param name="PumpDays">Follow-up in pump-days.</param>
/// <param name="Counts">Counts per measure.</param>
public sealed record CohortCounts(long Pumps, double PumpDays, IReadOnlyList<MeasureCount> Counts);

/// <summary>
/// A measure in a cohort: the event rate per 1000 pump-days with its exact Garwood interval and the proportion of
/// pumps affected with its exact Clopper–Pearson interval, each against the rest of the fleet, with the exact
/// one-sided p-value and its Benjamini–Hochberg adjusted value (null: not tested, too few counts or no rest).
/// </summary>
public sealed record MeasureEstimate(
    long Events, double? Rate, double? RateLower, double? RateUpper, double? RestRate, double? RateP, double? RateQ,
    long PumpsAffected, double? Proportion, double? ProportionLower, double? ProportionUpper, double? RestProportion, double? ProportionP,
    double? ProportionQ, bool Signal);

/// <summary>
/// Cohort rates and the multiplicity-controlled screen the surveillance view and API report (docs/detection.md,
/// cohorts). Each cohort × measure gives two tests against the rest of the fleet: its event count (exact one-sided
/// Poisson, expected = rest-of-fleet rate × the cohort's pump-days) and its pumps affected (exact one-sided
/// binomial, expected proportion = the rest of the fleet's). A test needs at least the minimum count (N ≥ 3 [S4]).
/// All tests of one screen are adjusted together by Benjamini–Hochberg, and a cohort × measure signals when either
/// of its adjusted values is below the false-discovery rate: the share of chance signals among those raised stays
/// near that rate however many cohorts and measures are looked at.
/// </summary>
public static class CohortSurveillance
{
    /// <summary>The method named on the page and in the API.</summary>
    public const string MethodName = BenjaminiHochberg.MethodName;

    /// <summary>Rates and intervals per cohort and measure (in the input order), with the screen applied.</summary>
    public static IReadOnlyList<IReadOnlyList<MeasureEstimate>> Screen(
        IReadOnlyList<CohortCounts> cohorts, long minimumCount, double falseDiscoveryRate, double confidence = 0.95)
    {
        ArgumentNullException.ThrowIfNull(cohorts);
        if (falseDiscoveryRate is <= 0 or >= 1 || double.IsNaN(falseDiscoveryRate))
        {
            throw new ArgumentOutOfRangeException(nameof(falseDiscoveryRate), falseDiscoveryRate, "The false-discovery rate must be in (0, 1).");
        }

        var measures = cohorts.Count == 0 ? 0 : cohorts[0].Counts.Count;
        if (cohorts.Any(c => c.Counts.Count != measures))
        {
            throw new ArgumentException("Every cohort must carry the same measures.", nameof(cohorts));
        }

        var fleetDays = cohorts.Sum(c => c.PumpDays);
        var fleetPumps = cohorts.Sum(c => c.Pumps);
        var rows = new (double? Rate, double? Lo, double? Hi, double? RestRate, double? P, double? Prop, double? PLo, double? PHi, double? RestProp, double? PP)[cohorts.Count, measures];
        var pValues = new List<double>();
        var slots = new List<(int Cohort, int Measure, bool Pumps)>();
        for (var m = 0; m < measures; m++)
        {
            var fleetEvents = cohorts.Sum(c => c.Counts[m].Events);
            var fleetAffected = cohorts.Sum(c => c.Counts[m].PumpsAffected);
            for (var i = 0; i < cohorts.Count; i++)
            {
                var c = cohorts[i];
                var (events, affected) = c.Counts[m];
                double? rate = null, lo = null, hi = null, rest = null, p = null, prop = null, plo = null, phi = null, restProp = null, pp = null;
                if (c.PumpDays > 0)
                {
                    var ci = ExactIntervals.Poisson(events, confidence);
                    rate = 1000 * events / c.PumpDays;
                    lo = 1000 * ci.Lower / c.PumpDays;
                    hi = 1000 * ci.Upper / c.PumpDays;
                }

                var restDays = fleetDays - c.PumpDays;
                if (restDays > 0)
                {
                    rest = 1000 * (fleetEvents - events) / restDays;
                    if (c.PumpDays > 0 && events >= minimumCount)
                    {
                        p = PoissonTest.UpperTail(events, rest.Value / 1000 * c.PumpDays);
                        pValues.Add(p.Value);
                        slots.Add((i, m, false));
                    }
                }

                if (c.Pumps > 0)
                {
                    var ci = ExactIntervals.ClopperPearson(Math.Min(affected, c.Pumps), c.Pumps, confidence);
                    prop = (double)affected / c.Pumps;
                    plo = ci.Lower;
                    phi = ci.Upper;
                }

                var restPumps = fleetPumps - c.Pumps;
                if (restPumps > 0)
                {
                    restProp = Math.Clamp((double)(fleetAffected - affected) / restPumps, 0, 1);
                    if (c.Pumps > 0 && affected >= minimumCount)
                    {
                        pp = ExactIntervals.BinomialUpperTail(Math.Min(affected, c.Pumps), c.Pumps, restProp.Value);
                        pValues.Add(pp.Value);
                        slots.Add((i, m, true));
                    }
                }

                rows[i, m] = (rate, lo, hi, rest, p, prop, plo, phi, restProp, pp);
            }
        }

        var adjusted = BenjaminiHochberg.Adjust(pValues);
        var q = new Dictionary<(int, int, bool), double>();
        for (var k = 0; k < slots.Count; k++)
        {
            q[slots[k]] = adjusted[k];
        }

        var result = new List<IReadOnlyList<MeasureEstimate>>(cohorts.Count);
        for (var i = 0; i < cohorts.Count; i++)
        {
            var list = new List<MeasureEstimate>(measures);
            for (var m = 0; m < measures; m++)
            {
                var r = rows[i, m];
                double? rq = q.TryGetValue((i, m, false), out var a) ? a : null;
                double? pq = q.TryGetValue((i, m, true), out var b) ? b : null;
                var signal = rq < falseDiscoveryRate || pq < falseDiscoveryRate;
                list.Add(new MeasureEstimate(cohorts[i].Counts[m].Events, r.Rate, r.Lo, r.Hi, r.RestRate, r.P, rq,
                    cohorts[i].Counts[m].PumpsAffected, r.Prop, r.PLo, r.PHi, r.RestProp, r.PP, pq, signal));
            }

            result.Add(list);
        }

        return result;
    }
}
