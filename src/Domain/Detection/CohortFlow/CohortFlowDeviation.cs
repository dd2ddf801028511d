using System.Globalization;
using PumpFleet.Domain.Statistics;

namespace PumpFleet.Domain.Detection.CohortFlow;

/// <summary>One cohort's test in a run of <see cref="CohortFlowDeviation.Evaluate"/>.</summary>
/// <param name="Cohort">The cohort.</param>
/// <param name="Pumps">Pumps with a usable refill cycle in the window (each counted once, by its latest cycle).</param>
/// <param name="MedianFactor">Median flow factor of those pumps (the cohort's estimated factor).</param>
/// <param name="LowerFactor">Lower end of the distribution-free 95 % interval for the median, or null when too few pumps.</param>
/// <param name="UpperFactor">Upper end of that interval, or null.</param>
/// <param name="Above">Pumps whose factor is above 1 + margin.</param>
/// <param name="Below">Pumps whose factor is below 1 − margin.</param>
/// <param name="PValue">One-sided sign-test p of the direction reported (the smaller of the two).</param>
/// <param name="QValue">Benjamini–Hochberg adjusted value of that test across the run.</param>
/// <param name="Direction">+1 over-infusion, −1 under-infusion, 0 no signal.</param>
/// <param name="Tests">Tests adjusted over in the run (cohorts × 2 directions).</param>
public sealed record CohortFlowResult(
    CohortKey Cohort, int Pumps, double MedianFactor, double? LowerFactor, double? UpperFactor, int Above, int Below,
    double PValue, double QValue, int Direction, int Tests)
{
    /// <summary>Whether the cohort signals.</summary>
    public bool Signals => Direction != 0;

    /// <summary>The anomaly's summary.</summary>
    public string Summary(double margin)
    {
        var inv = CultureInfo.InvariantCulture;
        var beyond = Direction > 0 ? Above : Below;
        var interval = LowerFactor is { } lo && UpperFactor is { } hi ? string.Create(inv, $" (95 % CI {lo:0.000}–{hi:0.000})") : "";
        return string.Create(inv,
            $"{Cohort}: refills reveal {(Direction > 0 ? "over" : "under")}-infusion across the cohort: median flow factor {MedianFactor:0.000}{interval} over {Pumps} pumps' last refill cycles, {beyond} of {Pumps} beyond {(Direction > 0 ? "+" : "−")}{margin:0.#%} (sign test p = {PValue:0.#e0}, Benjamini–Hochberg q = {QValue:0.#e0} over {Tests} tests); depletion forecasts of the cohort's pumps use the factor until their refill");
    }

    /// <summary>The anomaly's evidence (numbers only; the cohort is the stream id).</summary>
    public Dictionary<string, double> Evidence(double margin)
    {
        var e = new Dictionary<string, double>(StringComparer.Ordinal)
        {
            ["factor"] = Math.Round(MedianFactor, 4),
            ["pumps"] = Pumps,
            ["pumpsBeyondMargin"] = Direction > 0 ? Above : Below,
            ["margin"] = margin,
            ["direction"] = Direction,
            ["pValue"] = PValue,
            ["qValue"] = QValue,
            ["tests"] = Tests,
            ["falseDiscoveryControl"] = 1,
        };
        if (LowerFactor is { } lo && UpperFactor is { } hi)
        {
            e["factorLow"] = Math.Round(lo, 4);
            e["factorHigh"] = Math.Round(hi, 4);
        }

        return e;
    }
}

/// <summary>
/// The <c>cohort-flow-deviation</c> early warning: when refills reveal a systematic flow deviation in a cohort (lot,
/// model or firmware), the other pumps of that cohort are over- or under-infusing too, long before their own refill
/// shows it (most pumps have no level sensor, domain.md §3, §4).
/// <para>
/// Method: per pump, the flow factor of its latest refill cycle in the window (so a cohort is counted in pumps, never
/// in refills). Per cohort with at least <see cref="AnomalyDetectionOptions.CohortFlowMinPumps"/> pumps, two exact
/// one-sided sign tests: are more pumps above 1 + margin (or below 1 − margin) than an even chance allows? That asks
/// whether the cohort's median is beyond the margin, needs no distribution (a pocket fill or a misread syringe is one
/// vote, whatever its size), and is valid however the healthy pumps spread. The run's p-values (cohorts × 2
/// directions) are adjusted together by Benjamini–Hochberg; a cohort signals when its q ≤
/// <see cref="AnomalyDetectionOptions.CohortFlowAlpha"/>. Its estimated factor is the median, with the order-statistic
/// 95 % interval.
/// </para>
/// </summary>
public static class CohortFlowDeviation
{
    /// <summary>Tests every cohort with enough pumps; returns one result per cohort tested, signalling or not.</summary>
    public static IReadOnlyList<CohortFlowResult> Evaluate(IEnumerable<RefillFlowSample> samples, AnomalyDetectionOptions o, DateTimeOffset now)
    {
        ArgumentNullException.ThrowIfNull(samples);
        ArgumentNullException.ThrowIfNull(o);
        var since = now - o.CohortFlowWindow;
        var latest = new Dictionary<string, RefillFlowSample>(StringComparer.Ordinal);
        foreach (var s in samples)
        {
            if (s.At < since || s.At > now || !double.IsFinite(s.Factor) || s.CycleMl < o.CohortFlowMinCycleMl)
            {
                continue;
            }

            if (!latest.TryGetValue(s.Serial, out var prev) || s.At > prev.At)
            {
                latest[s.Serial] = s;
            }
        }

        var cohorts = new List<(CohortKey Key, double[] Sorted)>();
        foreach (var dimension in CohortKey.Dimensions)
        {
            foreach (var g in latest.Values
                         .Select(s => (Value: CohortKey.ValueOf(dimension, s.Model, s.Firmware, s.Lot), s.Factor))
                         .Where(x => !string.IsNullOrEmpty(x.Value))
                         .GroupBy(x => x.Value!, StringComparer.Ordinal)
                         .OrderBy(g => g.Key, StringComparer.Ordinal))
            {
                var sorted = g.Select(x => x.Factor).Order().ToArray();
                if (sorted.Length >= o.CohortFlowMinPumps)
                {
                    cohorts.Add((new CohortKey(dimension, g.Key), sorted));
                }
            }
        }

        var p = new double[cohorts.Count * 2];
        var counts = new (int Above, int Below)[cohorts.Count];
        for (var i = 0; i < cohorts.Count; i++)
        {
            var f = cohorts[i].Sorted;
            var above = f.Count(x => x > 1 + o.CohortFlowMargin);
            var below = f.Count(x => x < 1 - o.CohortFlowMargin);
            counts[i] = (above, below);
            p[2 * i] = SignTest.UpperTail(above, f.Length);
            p[(2 * i) + 1] = SignTest.UpperTail(below, f.Length);
        }

        var q = BenjaminiHochberg.Adjust(p);
        var results = new List<CohortFlowResult>(cohorts.Count);
        for (var i = 0; i < cohorts.Count; i++)
        {
            var (key, f) = cohorts[i];
            var over = q[2 * i] <= o.CohortFlowAlpha;
            var under = q[(2 * i) + 1] <= o.CohortFlowAlpha;
            var direction = over && (!under || q[2 * i] <= q[(2 * i) + 1]) ? 1 : under ? -1 : 0;
            var k = direction switch
            {
                1 => 2 * i,
                -1 => (2 * i) + 1,
                _ => p[2 * i] <= p[(2 * i) + 1] ? 2 * i : (2 * i) + 1,
            };

            var r = SignTest.MedianBoundRank(f.Length, 0.05);
            results.Add(new CohortFlowResult(key, f.Length, SignTest.Median(f), r > 0 ? f[r - 1] : null, r > 0 ? f[f.Length - r] : null,
                counts[i].Above, counts[i].Below, p[k], q[k], direction, p.Length));
        }

        return results;
    }
}
