using System.Globalization;
using System.Text;
using System.Text.Json.Nodes;
using PumpFleet.Contracts.Grains;
using PumpFleet.Domain.Detection;
using PumpFleet.Domain.Detection.CohortFlow;
using PumpFleet.Simulator;
using PumpFleet.Simulator.Faults;
using PumpFleet.Simulator.Generation;

namespace PumpFleet.DetectionScoring;

/// <summary>
/// Scores the <c>cohort-flow-deviation</c> early warning (issue 16). Fleets in which every pump of one lot deviates
/// by the same percentage from the first day (+15 % over-infusion, −15 % under-infusion, and ±3 %, inside the ±5 % test
/// margin), and a healthy fleet of the same size; each replayed through the per-pump loop (<see cref="FleetReplay"/>),
/// with the cohort job emulated on the simulated clock every <see cref="AnomalyDetectionOptions.CohortCheckInterval"/>:
/// the pumps' refill flow factors (<see cref="RefillFlow.FactorOf"/>, the samples the job reads) go through
/// <see cref="CohortFlowDeviation.Evaluate"/>, a cohort's warning opens and resolves as the cohort grain would, and
/// (unless told not to, the baseline) every pump of a warned cohort is told the correction as the job tells the grains,
/// so its own <c>depletion-risk</c> detector runs on it.
/// </summary>
public static class CohortFlowScoring
{
    /// <summary>The lot given the deviation (model SM2-20, about one pump in twelve).</summary>
    public const string Lot = "L2201";

    private static readonly CultureInfo Inv = CultureInfo.InvariantCulture;

    public static void Run(StringBuilder sb, AnomalyDetectionOptions detection, int seed, int pumps, int days)
    {
        var over = Scenario.Run(detection, seed, pumps, days, +15, tell: true);
        var overUntold = Scenario.Run(detection, seed, pumps, days, +15, tell: false);
        var under = Scenario.Run(detection, seed, pumps, days, -15, tell: true);
        var subOver = Scenario.Run(detection, seed, pumps, days, +3, tell: true);
        var subUnder = Scenario.Run(detection, seed, pumps, days, -3, tell: true);

        var healthyOptions = new SimulatorOptions { Seed = seed + 2000, Pumps = pumps, Duration = TimeSpan.FromDays(days), Speed = 0, FaultRateMultiplier = 0, SerialPrefix = "CFH" };
        var healthy = new Fleet(detection, tell: true);
        healthy.Run(new FleetGenerator(healthyOptions, new FaultScenario()).Generate());
        var healthyPumpDays = healthyOptions.Pumps * healthyOptions.Duration.TotalDays;

        sb.AppendLine(Inv, $"**Cohort early warning without a level sensor** (`cohort-flow-deviation`): seed {seed}, {pumps} pumps × {days} days per fleet; every pump of lot {Lot} ({over.LotPumps} pumps) deviates by the same percentage from day 0; the cohort job is emulated every {detection.CohortCheckInterval.TotalHours:0} h on the simulated clock (sign tests beyond ±{detection.CohortFlowMargin:0%}, Benjamini–Hochberg q ≤ {detection.CohortFlowAlpha}, at least {detection.CohortFlowMinPumps} pumps) and tells the warned cohort's pumps its factor, which their own depletion-risk detector then uses.");
        sb.AppendLine();
        Scoring.Line(sb, "measure", "+15 % (over)", "−15 % (under)", "+3 % (inside the margin)", "−3 % (inside the margin)");
        Scoring.Line(sb, "---", "---:", "---:", "---:", "---:");
        Scoring.Line(sb, "lot warned on (days to warning)", over.SignalDay, under.SignalDay, subOver.SignalDay, subUnder.SignalDay);
        Scoring.Line(sb, "estimated factor (95 % interval)", over.FactorText, under.FactorText, subOver.FactorText, subUnder.FactorText);
        Scoring.Line(sb, "evidence: lot pumps with a complete cycle before the warning (beyond the margin)", over.EvidenceText, under.EvidenceText, subOver.EvidenceText, subUnder.EvidenceText);
        Scoring.Line(sb, "**lot pumps warned before their own next refill** (whose refill comes after the warning)",
            over.WarnedBeforeRefillText, under.WarnedBeforeRefillText, subOver.WarnedBeforeRefillText, subUnder.WarnedBeforeRefillText);
        Scoring.Line(sb, "… median days from the warning to that refill (what the warning gains over the pump's own refill)",
            over.MedianGainText, under.MedianGainText, subOver.MedianGainText, subUnder.MedianGainText);
        Scoring.Line(sb, "warnings on any cohort (false where the deviation is inside the margin or not the lot's)",
            over.OpeningsText, under.OpeningsText, subOver.OpeningsText, subUnder.OpeningsText);
        Scoring.Line(sb, "**false warnings per 1000 pump-days** (goal < 1)", over.FalseRateText, under.FalseRateText, subOver.FalseRateText, subUnder.FalseRateText);
        sb.AppendLine();
        sb.AppendLine(Inv, $"Healthy fleet (seed {seed + 2000}, {healthyPumpDays:N0} pump-days): **{healthy.Openings.Count * 1000 / healthyPumpDays:0.000} warnings per 1000 pump-days** ({healthy.Openings.Count} warnings; {healthy.MaxTested} cohorts tested at most in a run, {healthy.MaxPumps} pumps with a sample).");
        sb.AppendLine();

        // Over-infusion: the pumps at risk of running low before their next refill, and the depletion-risk alert with
        // and without the correction reaching the pumps (same fleet, same seed, same warning).
        var told = over.Depletion(over);
        var untold = overUntold.Depletion(over);
        sb.AppendLine(Inv, $"+15 %: lot pumps at risk (their reservoir really reaches the low-reservoir level before their next refill) and their `depletion-risk` alert, with the cohort's correction told to the pumps and without (the baseline: the same fleet with the warning open but the pumps not told, as before the correction reached the detector):");
        sb.AppendLine();
        Scoring.Line(sb, "measure", "with correction", "without (baseline)");
        Scoring.Line(sb, "---", "---:", "---:");
        Scoring.Line(sb, "lot pumps with a ledger at the warning", over.AtSignal.Count, overUntold.AtSignal.Count);
        Scoring.Line(sb, "… at risk (would run below the low-reservoir level before the next refill)", told.AtRisk, untold.AtRisk);
        Scoring.Line(sb, "… of those already below it at the warning", told.AlreadyBelow, untold.AlreadyBelow);
        Scoring.Line(sb, "at risk whose **corrected** low-reservoir date is before they really run low (+1 d); programmed-rate date", $"{told.CorrectedInTime}/{told.AtRisk}", $"{told.UncorrectedInTime}/{told.AtRisk}");
        Scoring.Line(sb, "median error of the low-reservoir date (days; + = too late)", told.CorrectedErrorText, told.UncorrectedErrorText);
        Scoring.Line(sb, "**at risk with a depletion-risk alert raised before running low**", $"**{told.AlertedBeforeLow}/{told.AtRisk}**", $"**{untold.AlertedBeforeLow}/{untold.AtRisk}**");
        Scoring.Line(sb, "… raised after running low / never in that cycle", $"{told.AlertedAfterLow} / {told.NeverAlerted}", $"{untold.AlertedAfterLow} / {untold.NeverAlerted}");
        Scoring.Line(sb, "**median lead of the alert** (days before the reservoir really reaches the level; − = after)", told.MedianLeadText, untold.MedianLeadText);
        Scoring.Line(sb, "smallest lead (days)", told.MinLeadText, untold.MinLeadText);
        sb.AppendLine();
    }

    private static string Median(IReadOnlyCollection<double> xs, string format)
    {
        if (xs.Count == 0)
        {
            return "–";
        }

        var s = xs.Order().ToList();
        var m = s.Count % 2 == 1 ? s[s.Count / 2] : (s[(s.Count / 2) - 1] + s[s.Count / 2]) / 2;
        return m.ToString(format, Inv);
    }

    private sealed record PumpAtSignal(double BaselineMl, double DeliveredMl, DateTimeOffset BaselineAt, DateTimeOffset From, DateTimeOffset? LowAt,
        DateTimeOffset? CorrectedLowAt, double RatePerDay, double ThresholdMl, bool FromRefill);

    private sealed record DepletionScore(
        int AtRisk, int AlreadyBelow, int CorrectedInTime, int UncorrectedInTime, string CorrectedErrorText, string UncorrectedErrorText,
        int AlertedBeforeLow, int AlertedAfterLow, int NeverAlerted, string MedianLeadText, string MinLeadText);

    /// <summary>One deviating fleet, replayed once.</summary>
    private sealed class Scenario
    {
        public required double Percent { get; init; }
        public required int LotPumps { get; init; }
        public required SimulatorOptions Options { get; init; }
        public required Fleet Fleet { get; init; }
        public required HashSet<string> LotSerials { get; init; }
        public DateTimeOffset? SignalAt { get; set; }
        public CohortFlowResult? Signal { get; set; }
        public Dictionary<string, PumpAtSignal> AtSignal { get; } = new(StringComparer.Ordinal);
        public Dictionary<string, (DateTimeOffset At, double? Factor)> NextRefill { get; } = new(StringComparer.Ordinal);

        private CohortKey LotKey => new(CohortKey.Lot, Lot);

        private double PumpDays => Options.Pumps * Options.Duration.TotalDays;

        public string SignalDay => SignalAt is { } s ? string.Create(Inv, $"day {(s - Options.Start).TotalDays:0.0}") : "never";

        public string FactorText => Signal is { } sg ? string.Create(Inv, $"{sg.MedianFactor:0.000} ({sg.LowerFactor:0.000}–{sg.UpperFactor:0.000})") : "–";

        public string EvidenceText => Signal is { } sg ? string.Create(Inv, $"{sg.Pumps} ({(sg.Direction > 0 ? sg.Above : sg.Below)})") : "–";

        public string WarnedBeforeRefillText => SignalAt is null ? "–" : string.Create(Inv, $"{AtSignal.Count}/{LotPumps}");

        public string MedianGainText => SignalAt is { } s
            ? Median([.. AtSignal.Keys.Select(k => ((NextRefill.TryGetValue(k, out var r) ? r.At : Options.End) - s).TotalDays)], "0.0")
            : "–";

        public string OpeningsText => Fleet.Openings.Count == 0 ? "0" : string.Join(", ", Fleet.Openings.Select(o => o.Cohort.ToString()).Distinct());

        // Inside the margin every warning is false by design; otherwise every warning but the lot's.
        public string FalseRateText
        {
            get
            {
                var falseOnes = Math.Abs(Percent) < 5 ? Fleet.Openings.Count : Fleet.Openings.Count(o => o.Cohort != LotKey);
                return string.Create(Inv, $"{falseOnes * 1000 / PumpDays:0.000} ({falseOnes} in {PumpDays:N0})");
            }
        }

        public static Scenario Run(AnomalyDetectionOptions detection, int seed, int pumps, int days, double percent, bool tell)
        {
            var options = new SimulatorOptions { Seed = seed, Pumps = pumps, Duration = TimeSpan.FromDays(days), Speed = 0, FaultRateMultiplier = 0, SerialPrefix = "CFD" };
            var lotPumps = new FleetGenerator(options, new FaultScenario()).Plan.Pumps.Where(p => p.Device.Lot == Lot).ToList();
            var faultScenario = new FaultScenario
            {
                Faults = [.. lotPumps.Select(p => new ScenarioFault
                {
                    Kind = percent > 0 ? FaultKind.OverInfusion : FaultKind.UnderInfusion, PumpIndex = p.Index, StartAfterDays = 0,
                    Parameters = new JsonObject { ["percent"] = Math.Abs(percent) },
                })],
            };

            var scenario = new Scenario
            {
                Percent = percent, LotPumps = lotPumps.Count, Options = options, Fleet = new Fleet(detection, tell),
                LotSerials = lotPumps.Select(p => p.Serial).ToHashSet(StringComparer.Ordinal),
            };
            scenario.Fleet.OnCheck = scenario.OnCheck;
            scenario.Fleet.Run(new FleetGenerator(options, faultScenario).Generate());
            return scenario;
        }

        private void OnCheck(DateTimeOffset now, IReadOnlyList<CohortFlowResult> results, FleetReplay replay)
        {
            if (SignalAt is null && results.FirstOrDefault(r => r.Signals && r.Cohort == LotKey) is { } s)
            {
                SignalAt = now;
                Signal = s;
                var correction = new CohortFlowCorrection("score", s.Cohort, s.MedianFactor, now);
                foreach (var serial in LotSerials)
                {
                    // Every lot pump with a ledger: since its last refill, or since its first reading when the platform has
                    // seen no refill yet (the deviation runs from day 0, before either). Its forecasts before the correction.
                    if (replay.Pumps.TryGetValue(serial, out var st) && st.Ledger.BaselineMl is not null && st.Ledger.BaselineAt is not null)
                    {
                        // LowReservoirAt is the programmed-rate date whether or not the pump holds the correction yet.
                        var view = st.ToView();
                        AtSignal[serial] = new PumpAtSignal(st.Ledger.BaselineMl ?? 0, st.Ledger.DeliveredSinceBaselineMl, st.Ledger.BaselineAt!.Value,
                            view.ForecastFrom ?? now, view.LowReservoirAt, correction.Apply(view).LowReservoirAt, st.ForecastRateMlPerDay,
                            st.LowReservoirThresholdMl, st.Ledger.BaselineIsRefill);
                    }
                }
            }

            if (SignalAt is { } sAt)
            {
                // The first refill after the signal closes the cycle that was open: its realised factor is that cycle's truth.
                foreach (var serial in AtSignal.Keys)
                {
                    var st = replay.Pumps[serial];
                    if (!NextRefill.ContainsKey(serial) && st.Detectors.Refill.LastRefillAt is { } r && r > sAt)
                    {
                        NextRefill[serial] = (r, RefillFlow.FactorOf(st.Detectors.Refill, Fleet.Detection.CohortFlowMinCycleMl));
                    }
                }
            }
        }

        /// <summary>
        /// The at-risk pumps of <paramref name="truth"/> (the told run: the same fleet, so the same pumps and dates) and
        /// the depletion-risk alerts this run raised for them in the cycle open at the warning.
        /// </summary>
        public DepletionScore Depletion(Scenario truth)
        {
            var nominal = 1 + (Percent / 100) + 0.01;   // the simulator's mean per-pump bias is +1 %
            int atRisk = 0, alreadyBelow = 0, correctedInTime = 0, uncorrectedInTime = 0, before = 0, after = 0, never = 0;
            var errorsBefore = new List<double>();
            var errorsAfter = new List<double>();
            var leads = new List<double>();
            foreach (var (serial, p) in truth.AtSignal)
            {
                // The next refill's factor is the truth of a cycle the deviation ran through entirely (one that began with a
                // refill in the run); a cycle that began before day 0 mixes in healthy days, so it takes the nominal factor.
                var realised = p.FromRefill && truth.NextRefill.TryGetValue(serial, out var nr) && nr.Factor is { } f ? f : nominal;
                if (p.RatePerDay <= 0)
                {
                    continue;
                }

                var trueMl = p.BaselineMl - (p.DeliveredMl * realised);
                var trueLow = p.From + TimeSpan.FromDays((trueMl - p.ThresholdMl) / (p.RatePerDay * realised));
                if (p.LowAt is { } u)
                {
                    errorsBefore.Add((u - trueLow).TotalDays);
                }

                if (p.CorrectedLowAt is { } c)
                {
                    errorsAfter.Add((c - trueLow).TotalDays);
                }

                var refillAt = truth.NextRefill.TryGetValue(serial, out var n) ? n.At : truth.Options.End;
                if (trueLow >= refillAt)
                {
                    continue;   // refilled before it would have run low: not at risk in this cycle
                }

                atRisk++;
                if (trueMl <= p.ThresholdMl)
                {
                    alreadyBelow++;
                }

                if (p.CorrectedLowAt is { } cl && cl <= trueLow + TimeSpan.FromDays(1))
                {
                    correctedInTime++;
                }

                if (p.LowAt is { } ul && ul <= trueLow + TimeSpan.FromDays(1))
                {
                    uncorrectedInTime++;
                }

                // This run's first depletion-risk of the pump in that cycle (from its start to its next refill), by when
                // the platform raised it.
                var alert = Fleet.Replay.Detections
                    .Where(d => d.Serial == serial && d.Kind == AnomalyKinds.DepletionRisk && d.ReceivedAt >= p.BaselineAt && d.ReceivedAt < refillAt)
                    .Select(d => (DateTimeOffset?)d.ReceivedAt).Min();
                if (alert is not { } a)
                {
                    never++;
                    continue;
                }

                var lead = (trueLow - a).TotalDays;
                leads.Add(lead);
                if (lead > 0)
                {
                    before++;
                }
                else
                {
                    after++;
                }
            }

            return new DepletionScore(atRisk, alreadyBelow, correctedInTime, uncorrectedInTime, Median(errorsAfter, "+0.0;-0.0"),
                Median(errorsBefore, "+0.0;-0.0"), before, after, never, Median(leads, "+0.0;-0.0"),
                leads.Count == 0 ? "–" : leads.Min().ToString("+0.0;-0.0", Inv));
        }
    }

    /// <summary>A replay with the cohort job on the simulated clock, telling the warned cohorts' pumps (unless <c>tell</c> is off).</summary>
    private sealed class Fleet(AnomalyDetectionOptions detection, bool tell)
    {
        private readonly Dictionary<CohortKey, CohortFlowCorrection> _open = [];

        public AnomalyDetectionOptions Detection => detection;

        public FleetReplay Replay { get; } = new(detection);

        public List<(CohortKey Cohort, DateTimeOffset At)> Openings { get; } = [];

        public Dictionary<string, RefillFlowSample> Samples { get; } = new(StringComparer.Ordinal);

        public Action<DateTimeOffset, IReadOnlyList<CohortFlowResult>, FleetReplay>? OnCheck { get; set; }

        public int MaxTested { get; private set; }

        public int MaxPumps { get; private set; }

        public void Run(IEnumerable<FleetOutput> outputs) => Replay.Run(Tap(outputs));

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
            foreach (var (serial, st) in Replay.Pumps)
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
                if (r.Signals && !_open.ContainsKey(r.Cohort))
                {
                    _open[r.Cohort] = new CohortFlowCorrection($"{r.Cohort.StreamId}:{Openings.Count}", r.Cohort, r.MedianFactor, now);
                    Openings.Add((r.Cohort, now));
                }
                else if (!r.Signals)
                {
                    _open.Remove(r.Cohort);
                }
            }

            // A cohort no longer tested (too few pumps in the window) no longer stands out either.
            foreach (var c in _open.Keys.Where(c => !results.Any(r => r.Cohort == c)).ToList())
            {
                _open.Remove(c);
            }

            if (tell)
            {
                // As CohortFlowJob tells the grains after each run: each pump the correction it should hold now.
                foreach (var (serial, st) in Replay.Pumps)
                {
                    var wanted = CohortFlowCorrection.For(st.Device?.Model, st.Device?.Firmware, st.Device?.Lot, _open.Values);
                    if (wanted?.AnomalyId == st.FlowCorrection?.AnomalyId)
                    {
                        continue;
                    }

                    Replay.SetFlowCorrection(serial, wanted is null ? null : new PumpFlowCorrection
                    {
                        AnomalyId = wanted.AnomalyId, Cohort = wanted.Cohort.StreamId, Factor = wanted.Factor, Since = wanted.DetectedAt,
                    }, now);
                }
            }

            OnCheck?.Invoke(now, results, Replay);
        }
    }
}
