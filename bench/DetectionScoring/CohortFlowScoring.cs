using System.Globalization;
using System.Text;
using System.Text.Json.Nodes;
using PumpFleet.Domain.Detection;
using PumpFleet.Domain.Detection.CohortFlow;
using PumpFleet.Domain.Pumps;
using PumpFleet.Simulator;
using PumpFleet.Simulator.Faults;
using PumpFleet.Simulator.Generation;

namespace PumpFleet.DetectionScoring;

/// <summary>
/// Scores the <c>cohort-flow-deviation</c> early warning (issue 16 item 4). A fleet in which every pump of one lot
/// over-infuses by 15 % from the first day, and a healthy fleet of the same size; each replayed through the per-pump
/// loop (<see cref="FleetReplay"/>), with the cohort job emulated on the simulated clock every
/// <see cref="AnomalyDetectionOptions.CohortCheckInterval"/>: the pumps' refill flow factors
/// (<see cref="RefillFlow.FactorOf"/>, the samples the read model holds) go through
/// <see cref="CohortFlowDeviation.Evaluate"/>, and a cohort's warning opens and resolves as the cohort grain would.
/// </summary>
public static class CohortFlowScoring
{
    /// <summary>The lot given the deviation (model SM2-20, about one pump in twelve).</summary>
    public const string Lot = "L2201";

    /// <summary>The deviation injected.</summary>
    public const double Percent = 15;

    public static void Run(StringBuilder sb, AnomalyDetectionOptions detection, int seed, int pumps, int days)
    {
        var inv = CultureInfo.InvariantCulture;
        var options = new SimulatorOptions { Seed = seed, Pumps = pumps, Duration = TimeSpan.FromDays(days), Speed = 0, FaultRateMultiplier = 0, SerialPrefix = "CFD" };
        var lotPumps = new FleetGenerator(options, new FaultScenario()).Plan.Pumps.Where(p => p.Device.Lot == Lot).ToList();
        var scenario = new FaultScenario
        {
            Faults = [.. lotPumps.Select(p => new ScenarioFault
            {
                Kind = FaultKind.OverInfusion, PumpIndex = p.Index, StartAfterDays = 0, Parameters = new JsonObject { ["percent"] = Percent },
            })],
        };

        var lotSerials = lotPumps.Select(p => p.Serial).ToHashSet(StringComparer.Ordinal);
        var fault = new Fleet(detection);
        var atSignal = new Dictionary<string, PumpAtSignal>(StringComparer.Ordinal);
        DateTimeOffset? signalAt = null;
        CohortFlowResult? signal = null;
        var nextRefill = new Dictionary<string, (DateTimeOffset At, double? Factor)>(StringComparer.Ordinal);
        fault.OnCheck = (now, results, replay) =>
        {
            if (signalAt is null && results.FirstOrDefault(r => r.Signals && r.Cohort == new CohortKey(CohortKey.Lot, Lot)) is { } s)
            {
                signalAt = now;
                signal = s;
                var correction = new CohortFlowCorrection("score", s.Cohort, s.MedianFactor, now);
                foreach (var serial in lotSerials)
                {
                    // Every lot pump with a ledger: since its last refill, or since its first reading when the platform has
                    // seen no refill yet (the deviation runs from day 0, before either).
                    if (replay.Pumps.TryGetValue(serial, out var st) && st.Ledger.BaselineMl is not null && st.Ledger.BaselineAt is not null)
                    {
                        var view = st.ToView();
                        atSignal[serial] = new PumpAtSignal(st.Ledger.BaselineMl ?? 0, st.Ledger.DeliveredSinceBaselineMl, st.Ledger.BaselineAt!.Value,
                            view.ForecastFrom ?? now, view.LowReservoirAt, correction.Apply(view).LowReservoirAt, st.ForecastRateMlPerDay,
                            st.LowReservoirThresholdMl, st.Ledger.BaselineIsRefill);
                    }
                }
            }

            if (signalAt is { } sAt)
            {
                // The first refill after the signal closes the cycle that was open: its realised factor is that cycle's truth.
                foreach (var serial in atSignal.Keys)
                {
                    var st = replay.Pumps[serial];
                    if (!nextRefill.ContainsKey(serial) && st.Detectors.Refill.LastRefillAt is { } r && r > sAt)
                    {
                        nextRefill[serial] = (r, RefillFlow.FactorOf(st.Detectors.Refill, detection.CohortFlowMinCycleMl));
                    }
                }
            }
        };
        fault.Run(new FleetGenerator(options, scenario).Generate());

        var healthyOptions = new SimulatorOptions { Seed = seed + 2000, Pumps = pumps, Duration = TimeSpan.FromDays(days), Speed = 0, FaultRateMultiplier = 0, SerialPrefix = "CFH" };
        var healthy = new Fleet(detection);
        healthy.Run(new FleetGenerator(healthyOptions, new FaultScenario()).Generate());

        // Each lot pump with a refill cycle open at the signal: when would it really have run below its low-reservoir level?
        var nominal = 1 + (Percent / 100) + 0.01;   // the simulator's mean per-pump bias is +1 %
        var atRisk = 0;
        var warnedBeforeLow = 0;
        var correctedInTime = 0;
        var uncorrectedInTime = 0;
        var alreadyBelow = 0;
        var errorsBefore = new List<double>();
        var errorsAfter = new List<double>();
        foreach (var (serial, p) in atSignal)
        {
            // The next refill's factor is the truth of a cycle the deviation ran through entirely (one that began with a
            // refill in the run); a cycle that began before day 0 mixes in healthy days, so it takes the nominal factor.
            var realised = p.FromRefill && nextRefill.TryGetValue(serial, out var nr) && nr.Factor is { } f ? f : nominal;
            var trueMl = p.BaselineMl - (p.DeliveredMl * realised);
            if (p.RatePerDay <= 0)
            {
                continue;
            }

            var trueLow = p.From + TimeSpan.FromDays((trueMl - p.ThresholdMl) / (p.RatePerDay * realised));
            if (trueMl <= p.ThresholdMl)
            {
                alreadyBelow++;
            }

            if (p.LowAt is { } u)
            {
                errorsBefore.Add((u - trueLow).TotalDays);
            }

            if (p.CorrectedLowAt is { } c)
            {
                errorsAfter.Add((c - trueLow).TotalDays);
            }

            var refillAt = nextRefill.TryGetValue(serial, out var n) ? n.At : options.End;
            if (trueLow >= refillAt)
            {
                continue;   // refilled before it would have run low: not at risk in this cycle
            }

            atRisk++;
            if (signalAt < trueLow)
            {
                warnedBeforeLow++;
            }

            // A refill planned for the forecast low-reservoir date would have come in time (a day's grace for clinic hours).
            if (p.CorrectedLowAt is { } cl && cl <= trueLow + TimeSpan.FromDays(1))
            {
                correctedInTime++;
            }

            if (p.LowAt is { } ul && ul <= trueLow + TimeSpan.FromDays(1))
            {
                uncorrectedInTime++;
            }
        }

        var healthyPumpDays = healthyOptions.Pumps * healthyOptions.Duration.TotalDays;
        var faultOtherOpenings = fault.Openings.Where(o => o.Cohort != new CohortKey(CohortKey.Lot, Lot)).ToList();

        sb.AppendLine(inv, $"**Cohort early warning without a level sensor** (`cohort-flow-deviation`): seed {seed}, {pumps} pumps × {days} days per fleet; every pump of lot {Lot} ({lotPumps.Count} pumps) over-infuses by {Percent:0} % from day 0; the cohort job is emulated every {detection.CohortCheckInterval.TotalHours:0} h on the simulated clock (sign tests beyond ±{detection.CohortFlowMargin:0%}, Benjamini–Hochberg q ≤ {detection.CohortFlowAlpha}, at least {detection.CohortFlowMinPumps} pumps).");
        sb.AppendLine();
        Scoring.Line(sb, "measure", "value");
        Scoring.Line(sb, "---", "---:");
        Scoring.Line(sb, "signal raised", signalAt is { } sa ? $"day {(sa - options.Start).TotalDays:0.0}" : "never");
        Scoring.Line(sb, "estimated factor (95 % CI)", signal is { } sg ? string.Create(inv, $"{sg.MedianFactor:0.000} ({sg.LowerFactor:0.000}–{sg.UpperFactor:0.000})") : "–");
        Scoring.Line(sb, "lot pumps whose refills were the evidence (a complete cycle closed before the signal)", signal is { } sg2 ? $"{sg2.Pumps} ({sg2.Above} beyond +{detection.CohortFlowMargin:0%})" : "–");
        Scoring.Line(sb, "lot pumps with a ledger at the signal (their next refill comes after it)", atSignal.Count);
        Scoring.Line(sb, "… already below the low-reservoir level at the signal", alreadyBelow);
        Scoring.Line(sb, "… would have run below it before their next refill (at risk)", atRisk);
        Scoring.Line(sb, "**at risk and warned before running low** (goal: all)", $"**{warnedBeforeLow}/{atRisk}**");
        Scoring.Line(sb, "at risk whose corrected low-reservoir date (level and rate × the cohort's factor) is before they run low (+1 d)", $"{correctedInTime}/{atRisk}");
        Scoring.Line(sb, "… whose uncorrected (programmed-rate) date was", $"{uncorrectedInTime}/{atRisk}");
        Scoring.Line(sb, "median error of the low-reservoir date, uncorrected → corrected (days; + = too late)",
            errorsBefore.Count > 0 ? string.Create(inv, $"{Median(errorsBefore):+0.0;-0.0} → {Median(errorsAfter):+0.0;-0.0}") : "–");
        Scoring.Line(sb, "other cohorts warned in this fleet (false)", faultOtherOpenings.Count == 0 ? "0" : string.Join(", ", faultOtherOpenings.Select(o => o.Cohort.ToString())));
        Scoring.Line(sb, string.Create(inv, $"**healthy fleet: warnings per 1000 pump-days** ({healthyPumpDays:N0} pump-days; goal < 1)"),
            string.Create(inv, $"**{healthy.Openings.Count * 1000 / healthyPumpDays:0.000}** ({healthy.Openings.Count} warnings; {healthy.MaxTested} cohorts tested at most in a run, {healthy.MaxPumps} pumps with a sample)"));
        sb.AppendLine();
    }

    private static double Median(List<double> xs)
    {
        var s = xs.Order().ToList();
        return s.Count % 2 == 1 ? s[s.Count / 2] : (s[(s.Count / 2) - 1] + s[s.Count / 2]) / 2;
    }

    private sealed record PumpAtSignal(double BaselineMl, double DeliveredMl, DateTimeOffset BaselineAt, DateTimeOffset From, DateTimeOffset? LowAt,
        DateTimeOffset? CorrectedLowAt, double RatePerDay, double ThresholdMl, bool FromRefill);

    /// <summary>A replay with the cohort job on the simulated clock.</summary>
    private sealed class Fleet(AnomalyDetectionOptions detection)
    {
        private readonly FleetReplay _replay = new(detection);
        private readonly HashSet<CohortKey> _open = [];

        public List<(CohortKey Cohort, DateTimeOffset At)> Openings { get; } = [];

        public Dictionary<string, RefillFlowSample> Samples { get; } = new(StringComparer.Ordinal);

        public Action<DateTimeOffset, IReadOnlyList<CohortFlowResult>, FleetReplay>? OnCheck { get; set; }

        public int MaxTested { get; private set; }

        public int MaxPumps { get; private set; }

        public void Run(IEnumerable<FleetOutput> outputs) => _replay.Run(Tap(outputs));

        private IEnumerable<FleetOutput> Tap(IEnumerable<FleetOutput> outputs)
        {
            DateTimeOffset? next = null;
            foreach (var o in outputs)
            {
                if (o is PumpBatch b)
                {
                    next ??= b.At + detection.CohortCheckInterval;
                    while (b.At >= next)
                    {
                        Check(next.Value);
                        next += detection.CohortCheckInterval;
                    }
                }

                yield return o;
            }
        }

        private void Check(DateTimeOffset now)
        {
            foreach (var (serial, st) in _replay.Pumps)
            {
                if (RefillFlow.FactorOf(st.Detectors.Refill, detection.CohortFlowMinCycleMl) is { } f && st.Detectors.Refill.LastRefillAt is { } at
                    && st.Detectors.Refill.CycleDeliveredMl is { } cycle)
                {
                    Samples[serial] = new RefillFlowSample(serial, st.Device?.Model, st.Device?.Firmware, st.Device?.Lot, at, f, cycle);
                }
            }

            var results = CohortFlowDeviation.Evaluate(Samples.Values, detection, now);
            MaxTested = Math.Max(MaxTested, results.Count);
            MaxPumps = Math.Max(MaxPumps, Samples.Count);
            foreach (var r in results)
            {
                if (r.Signals && _open.Add(r.Cohort))
                {
                    Openings.Add((r.Cohort, now));
                }
                else if (!r.Signals)
                {
                    _open.Remove(r.Cohort);
                }
            }

            // A cohort no longer tested (too few pumps in the window) no longer stands out either.
            _open.RemoveWhere(c => !results.Any(r => r.Cohort == c));
            OnCheck?.Invoke(now, results, _replay);
        }
    }
}
