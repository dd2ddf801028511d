using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.Json.Nodes;
using PumpFleet.DetectionScoring;
using PumpFleet.Domain.Detection;
using PumpFleet.Domain.Pumps;
using PumpFleet.Simulator;
using PumpFleet.Simulator.Faults;
using PumpFleet.Simulator.Generation;

// Usage: DetectionScoring [--pumps N] [--days D] [--seed S] [--out file.md]
var pumps = 1000;
var days = 60;
var seed = 7;
string? outFile = null;
string? trace = null;
double? cusumSigmas = null;
var cohortFlowOnly = false;
var cohortFlowDays = 180;
for (var i = 0; i + 1 < args.Length; i += 2)
{
    switch (args[i])
    {
        case "--pumps": pumps = int.Parse(args[i + 1], CultureInfo.InvariantCulture); break;
        case "--days": days = int.Parse(args[i + 1], CultureInfo.InvariantCulture); break;
        case "--seed": seed = int.Parse(args[i + 1], CultureInfo.InvariantCulture); break;
        case "--out": outFile = args[i + 1]; break;
        case "--trace": trace = args[i + 1]; break;
        case "--cusum-sigmas": cusumSigmas = double.Parse(args[i + 1], CultureInfo.InvariantCulture); break;
        case "--cohort-flow-only": cohortFlowOnly = bool.Parse(args[i + 1]); break;
        case "--cohort-flow-days": cohortFlowDays = int.Parse(args[i + 1], CultureInfo.InvariantCulture); break;
        default: throw new ArgumentException($"unknown option {args[i]}");
    }
}

var detection = new AnomalyDetectionOptions();
if (cusumSigmas is { } h)
{
    detection.FlowCusumThresholdSigmas = h;
}

var sb = new StringBuilder();
var inv = CultureInfo.InvariantCulture;
sb.AppendLine(inv, $"Run {DateTimeOffset.UtcNow:yyyy-MM-dd} on {Environment.ProcessorCount} cores, {System.Runtime.InteropServices.RuntimeInformation.OSDescription}, .NET {Environment.Version}.");
sb.AppendLine(inv, $"Pure in-memory loop (IngestPlanner → PumpState fold → AnomalyEngine, the code PumpGrain runs), simulator seed {seed}, {pumps} pumps × {days} days per fleet, hourly reporting, default detection options{(cusumSigmas is null ? "" : string.Create(CultureInfo.InvariantCulture, $" except FlowCusumThresholdSigmas = {cusumSigmas}"))}.");
sb.AppendLine();

if (cohortFlowOnly)
{
    CohortFlowScoring.Run(sb, detection, seed, pumps, cohortFlowDays);
    Console.WriteLine(sb.ToString());
    if (outFile is not null)
    {
        File.WriteAllText(outFile, sb.ToString());
    }

    return 0;
}

// Fault fleet: random faults off; eight of every ten pumps get one injected fault, starting on days 5–25.
string[] kinds = [FaultKind.FullStall, FaultKind.IntermittentStall, FaultKind.UnderInfusion, FaultKind.OverInfusion,
    FaultKind.PocketFill, FaultKind.CatheterOcclusion, FaultKind.BatteryFailure, FaultKind.SilentHub, FaultKind.WrongConcentration];
var faults = new List<ScenarioFault>();
for (var i = 0; i < pumps; i++)
{
    if (i % 10 >= kinds.Length)
    {
        continue;
    }

    var kind = kinds[i % 10];
    var start = 5 + ((i * 7919 % 2000) / 100.0);
    double? duration = kind switch
    {
        FaultKind.FullStall => 3,
        FaultKind.IntermittentStall => 4,
        FaultKind.SilentHub => 3,
        _ => null,
    };
    var parameters = new JsonObject();
    if (kind is FaultKind.UnderInfusion or FaultKind.OverInfusion)
    {
        parameters["percent"] = 20.0;   // the ±20 % goal deviation
    }

    faults.Add(new ScenarioFault { Kind = kind, PumpIndex = i, StartAfterDays = start, DurationDays = duration, Parameters = parameters });
}

var faultOptions = Options(seed, pumps, days);
var sw = Stopwatch.StartNew();
var generator = new FleetGenerator(faultOptions, new FaultScenario { Faults = faults });
var outputs = generator.Generate().ToList();
var truth = outputs.OfType<FaultInjected>().Select(f => f.Record).Where(r => r.Kind != FaultKind.CohortDrift).ToList();
var replay = new FleetReplay(detection) { Logs = [] };
replay.Run(outputs);
var faultSeconds = sw.Elapsed.TotalSeconds;

// The same fleet delivered out of order (issue 13): batches swapped, and every refill a day late.
var swapped = new FleetReplay(detection) { Logs = [] };
swapped.Run(Reorder.SwapBatches(outputs, seed));
var lateRefill = new FleetReplay(detection) { Logs = [] };
lateRefill.Run(Reorder.LateRefills(outputs, TimeSpan.FromDays(1)));
outputs.Clear();

// Healthy fleet: another seed, no injected faults, ordinary hub outages and clock resets left on.
var healthyOptions = Options(seed + 1000, pumps, days);
healthyOptions.SerialPrefix = "HLT";
sw.Restart();
var healthy = new FleetReplay(detection) { Trace = trace };
healthy.Run(new FleetGenerator(healthyOptions, new FaultScenario()).Generate());
var healthySeconds = sw.Elapsed.TotalSeconds;

var runEnd = faultOptions.End;
var plan = generator.Plan;
var profiles = plan.Pumps.ToDictionary(p => p.Serial, StringComparer.Ordinal);

sb.AppendLine(inv, $"Fault fleet: {replay.Events:N0} device events in {faultSeconds:0.0} s; healthy fleet: {healthy.Events:N0} events in {healthySeconds:0.0} s.");
sb.AppendLine();
sb.AppendLine("**Recall per injected fault** (a fault counts as found when a detector kind that explains it opens on that pump between its start and its end plus a grace period):");
sb.AppendLine();
Scoring.Line(sb, "fault kind", "injected", "recall (by run end)", "goal window", "recall within goal", "… counted from data arrival", "median delay");
Scoring.Line(sb, "---", "---:", "---:", "---", "---:", "---:", "---:");
foreach (var kind in kinds)
{
    var records = truth.Where(t => t.Kind == kind).ToList();
    var delays = new List<TimeSpan>();
    var withinGoal = 0;
    var withinGoalArrival = 0;
    var goal = Scoring.Goal(kind, faultOptions.ReportingInterval);
    foreach (var t in records)
    {
        var first = replay.Detections.Where(d => Scoring.Matches(d, t, runEnd)).OrderBy(d => d.At).FirstOrDefault();
        if (first is null)
        {
            continue;
        }

        var delay = first.At - t.Start < TimeSpan.Zero ? TimeSpan.Zero : first.At - t.Start;
        delays.Add(delay);
        if (goal is { } g && delay <= g)
        {
            withinGoal++;
        }
        if (goal is { } g2 && replay.ArrivalOf(t.Serial, t.Start) is { } arrived && first.ReceivedAt - arrived <= g2)
        {
            withinGoalArrival++;
        }

        if (goal is { } g3 && delay > g3 && kind == FaultKind.FullStall)
        {
            Console.Error.WriteLine($"late full-stall: {t.Serial} start {t.Start:O} detected {first.At:O} (batch received {first.ReceivedAt:O}, first data after the start received {replay.ArrivalOf(t.Serial, t.Start):O}): {first.Summary}");
        }
    }

    Scoring.Line(sb, kind, records.Count, Scoring.Ratio(delays.Count, records.Count),
        goal is { } gw ? (gw.TotalHours < 48 ? $"{gw.TotalHours:0} h" : $"{gw.TotalDays:0} d") : "–",
        goal is null ? "–" : Scoring.Ratio(withinGoal, records.Count), goal is null ? "–" : Scoring.Ratio(withinGoalArrival, records.Count), Scoring.Median(delays));
}

sb.AppendLine();
sb.AppendLine("**Wrong-concentration refills by detector** (the strength filled is 4× the prescribed; `dose-above-limit` can only find those whose multiplied dose exceeds a labelled limit, domain.md §1.5):");
sb.AppendLine();
Scoring.Line(sb, "detector", "faults it could find", "recall", "median delay");
Scoring.Line(sb, "---", "---:", "---:", "---:");
var wrongFills = truth.Where(t => t.Kind == FaultKind.WrongConcentration).ToList();
foreach (var detector in new[] { AnomalyKinds.RefillMismatch, AnomalyKinds.DoseAboveLimit })
{
    var eligible = detector == AnomalyKinds.DoseAboveLimit ? wrongFills.Where(t => AboveLimit(replay, t)).ToList() : wrongFills;
    var delays = eligible.Select(t => replay.Detections.Where(d => d.Kind == detector && Scoring.Matches(d, t, runEnd)).OrderBy(d => d.At).FirstOrDefault() is { } f ? f.At - t.Start : (TimeSpan?)null)
        .Where(x => x is not null).Select(x => x!.Value < TimeSpan.Zero ? TimeSpan.Zero : x.Value).ToList();
    Scoring.Line(sb, detector, detector == AnomalyKinds.DoseAboveLimit ? $"{eligible.Count} of {wrongFills.Count} (4× dose above the label)" : $"{eligible.Count}",
        Scoring.Ratio(delays.Count, eligible.Count), Scoring.Median(delays));
}

sb.AppendLine();
sb.AppendLine("**±20 % flow deviation by pump type** (a fill-level sensor gives measured levels every 6 h; without one, the aspirated residual at the next refill is the only observation of flow):");
sb.AppendLine();
Scoring.Line(sb, "fault", "pumps", "programmed rate", "recall within 7 d", "recall by run end", "median delay");
Scoring.Line(sb, "---", "---", "---", "---:", "---:", "---:");
foreach (var kind in new[] { FaultKind.UnderInfusion, FaultKind.OverInfusion })
{
    foreach (var (label, filter) in new (string, Func<string, bool>)[]
    {
        ("with sensor", s => profiles[s].HasSensor && Rate(replay, s) >= 0.2),
        ("with sensor", s => profiles[s].HasSensor && Rate(replay, s) < 0.2),
        ("without sensor", s => !profiles[s].HasSensor),
    })
    {
        var records = truth.Where(t => t.Kind == kind && filter(t.Serial)).ToList();
        var delays = records.Select(t => replay.Detections.Where(d => Scoring.Matches(d, t, runEnd)).OrderBy(d => d.At).FirstOrDefault() is { } f ? f.At - t.Start : (TimeSpan?)null)
            .Where(x => x is not null).Select(x => x!.Value).ToList();
        var rateLabel = label == "without sensor" ? "any" : records.Count > 0 && Rate(replay, records[0].Serial) >= 0.2 ? "≥ 0.2 mL/day" : "< 0.2 mL/day";
        Scoring.Line(sb, kind, $"{label}, {records.Count}", rateLabel, Scoring.Ratio(delays.Count(x => x <= TimeSpan.FromDays(7)), records.Count),
            Scoring.Ratio(delays.Count, records.Count), Scoring.Median(delays));
    }
}

sb.AppendLine();
sb.AppendLine("**Precision per detector** (fault fleet; a detection is true when the pump has an injected fault that the detector kind explains, active at that time):");
sb.AppendLine();
Scoring.Line(sb, "detector", "detections", "precision");
Scoring.Line(sb, "---", "---:", "---:");
foreach (var kind in Scoring.Explains.Keys)
{
    var ds = replay.Detections.Where(d => d.Kind == kind && !Scoring.IsCondition(d)).ToList();
    if (kind == AnomalyKinds.Silent)
    {
        // Ordinary outages over the window are real silences, not faults: count them apart.
        var explained = ds.Count(d => truth.Any(t => Scoring.Matches(d, t, runEnd)));
        Scoring.Line(sb, kind, ds.Count, $"{explained} explained by a silent-hub fault, {ds.Count - explained} by ordinary hub outages > {detection.SilentWindow.TotalHours:0} h");
        continue;
    }

    var tp = ds.Count(d => truth.Any(t => Scoring.Matches(d, t, runEnd)));
    Scoring.Line(sb, kind, ds.Count, Scoring.Ratio(tp, ds.Count));
}

var allFault = replay.Detections.Where(d => !Scoring.IsCondition(d) && !Scoring.IsOutage(d)).ToList();
var allTp = allFault.Count(d => truth.Any(t => Scoring.Matches(d, t, runEnd)));
Scoring.Line(sb, "**all fault detectors**", allFault.Count, Scoring.Ratio(allTp, allFault.Count));

var pumpDays = healthyOptions.Pumps * healthyOptions.Duration.TotalDays;
sb.AppendLine();
sb.AppendLine(inv, $"**Healthy fleet** ({pumpDays:N0} pump-days, no injected faults): alerts per 1000 pump-days.");
sb.AppendLine();
Scoring.Line(sb, "anomaly kind", "count", "per 1000 pump-days", "what it is");
Scoring.Line(sb, "---", "---:", "---:", "---");
var falseAlerts = healthy.Detections.Where(d => !Scoring.IsCondition(d) && !Scoring.IsOutage(d)).ToList();
foreach (var g in healthy.Detections.GroupBy(d => (d.Kind, Condition: Scoring.IsCondition(d) || Scoring.IsOutage(d))).OrderBy(g => g.Key.Condition).ThenBy(g => g.Key.Kind, StringComparer.Ordinal))
{
    Scoring.Line(sb, g.Key.Kind, g.Count(), (g.Count() * 1000 / pumpDays).ToString("0.00", inv),
        g.Key.Condition ? "a real condition (not a fault): " + Describe(g.Key.Kind) : "**false alert**");
}

Scoring.Line(sb, "**false alerts (fault detectors)**", falseAlerts.Count, (falseAlerts.Count * 1000 / pumpDays).ToString("0.00", inv), "goal < 1");

sb.AppendLine();
sb.AppendLine(inv, $"**Out of order** (same fault fleet, same seed): in order; batches out of order (per pump one batch in three held back and delivered after the next, {swapped.Rebuilds} full replays); every refill delivered alone a day late ({lateRefill.Rebuilds} full replays). Recall by run end; median detection delay in event time (from the fault's start to the event time at which the data showed it, the anomaly's `at`); median arrival lag (from that event time to the receive time of the batch after which the platform decided, `raisedAt`: how late the evidence reached the platform, plus any wait for missing data):");
sb.AppendLine();
Scoring.Line(sb, "fault kind", "in order", "batches out of order", "refills a day late");
Scoring.Line(sb, "---", "---:", "---:", "---:");
foreach (var kind in kinds)
{
    var records = truth.Where(t => t.Kind == kind).ToList();
    Scoring.Line(sb, kind, Cell(replay, records, runEnd), Cell(swapped, records, runEnd), Cell(lateRefill, records, runEnd));
}

Scoring.Line(sb, "precision (all fault detectors)", Precision(replay, truth, runEnd), Precision(swapped, truth, runEnd), Precision(lateRefill, truth, runEnd));

sb.AppendLine();
var silentPumps = Math.Max(50, pumps / 5);
var withTime = SilentDepletion.Run(detection, reevaluate: true, silentPumps, seed);
var withoutTime = SilentDepletion.Run(detection, reevaluate: false, silentPumps, seed);
sb.AppendLine(inv, $"**Silent while the reservoir runs down**: {silentPumps} baclofen pumps (0.5–3 mL/day) report for 12 h, then their hub goes silent; the ledger empties 36–120 h into the silence. Depletion risk against the ledger's empty time:");
sb.AppendLine();
Scoring.Line(sb, "detectors run", "raised ≥ 24 h before empty", "raised later", "never raised", "median lead", "smallest lead");
Scoring.Line(sb, "---", "---:", "---:", "---:", "---:", "---:");
foreach (var (label, r) in new[] { ("on data and on time (now)", withTime), ("only on data (before)", withoutTime) })
{
    Scoring.Line(sb, label, $"{r.RaisedAtLeast24h}/{r.Pumps}", r.RaisedLater, r.Never,
        r.MedianLead is { } m ? $"{m.TotalHours:0} h" : "–", r.MinLead is { } mn ? $"{mn.TotalHours:0} h" : "–");
}

sb.AppendLine();
CohortFlowScoring.Run(sb, detection, seed, pumps, cohortFlowDays);

var inOrderLogs = replay.Logs!;
var swappedLogs = swapped.Logs!;
var foldEvents = inOrderLogs.Values.Sum(l => l.Count);
_ = FoldCost.NanosPerEvent(inOrderLogs, arrivalOrderBaseline: true, repeats: 1);   // warm-up (JIT)
var baseIn = FoldCost.NanosPerEvent(inOrderLogs, arrivalOrderBaseline: true, repeats: 5);
var newIn = FoldCost.NanosPerEvent(inOrderLogs, arrivalOrderBaseline: false, repeats: 5);
var baseSw = FoldCost.NanosPerEvent(swappedLogs, arrivalOrderBaseline: true, repeats: 5);
var newSw = FoldCost.NanosPerEvent(swappedLogs, arrivalOrderBaseline: false, repeats: 5);
sb.AppendLine(inv, $"**Cost of the fold per event** (the fold alone over every pump's stored stream, {foldEvents:N0} events in order, median of 5 passes, same process; Release):");
sb.AppendLine();
Scoring.Line(sb, "stream", "arrival-order fold (before)", "order-independent fold", "ratio");
Scoring.Line(sb, "---", "---:", "---:", "---:");
Scoring.Line(sb, "in order", $"{baseIn:0} ns", $"{newIn:0} ns", $"{newIn / baseIn:0.00}");
Scoring.Line(sb, "batches out of order (the before column folds them wrongly)", $"{baseSw:0} ns", $"{newSw:0} ns", $"{newSw / baseSw:0.00}");

var text = sb.ToString();
Console.WriteLine(text);
if (outFile is not null)
{
    File.WriteAllText(outFile, text);
}

foreach (var g in lateRefill.Detections.Where(d => !Scoring.IsCondition(d) && !Scoring.IsOutage(d) && !truth.Any(t => Scoring.Matches(d, t, runEnd))).GroupBy(d => d.Kind))
{
    Console.Error.WriteLine($"late-refill false: {g.Key} {g.Count()}: {g.First().Serial} {g.First().At:O} {g.First().Summary}");
}

foreach (var d in falseAlerts.Take(10))
{
    Console.Error.WriteLine($"false alert: {d.Serial} {d.Kind} {d.At:O} {d.Summary}");
}

return 0;

static string Cell(FleetReplay r, List<GroundTruthRecord> records, DateTimeOffset runEnd)
{
    var delays = new List<TimeSpan>();
    var lags = new List<TimeSpan>();
    foreach (var t in records)
    {
        if (r.Detections.Where(d => Scoring.Matches(d, t, runEnd)).OrderBy(d => d.At).FirstOrDefault() is { } first)
        {
            delays.Add(first.At - t.Start < TimeSpan.Zero ? TimeSpan.Zero : first.At - t.Start);
            lags.Add(first.ReceivedAt - first.At < TimeSpan.Zero ? TimeSpan.Zero : first.ReceivedAt - first.At);
        }
    }

    return $"{Scoring.Ratio(delays.Count, records.Count)}, {Scoring.Median(delays)} (lag {Scoring.Median(lags)})";
}

static string Precision(FleetReplay r, List<GroundTruthRecord> truth, DateTimeOffset runEnd)
{
    var all = r.Detections.Where(d => !Scoring.IsCondition(d) && !Scoring.IsOutage(d)).ToList();
    return Scoring.Ratio(all.Count(d => truth.Any(t => Scoring.Matches(d, t, runEnd))), all.Count);
}

static SimulatorOptions Options(int seed, int pumps, int days) => new()
{
    Seed = seed,
    Pumps = pumps,
    Duration = TimeSpan.FromDays(days),
    Speed = 0,
    FaultRateMultiplier = 0,
};

// Whether the filled strength times the programmed volume (prescription at run end; boluses included) exceeds the drug's labelled limit.
static bool AboveLimit(FleetReplay r, GroundTruthRecord t)
{
    if (!r.Pumps.TryGetValue(t.Serial, out var s) || s.Prescription is not { } rx)
    {
        return false;
    }

    var dose = PumpFleet.Domain.Drugs.DailyDose.Of(rx);
    var filled = t.Parameters["filledValue"]?.GetValue<double>() ?? 0;
    var factor = rx.Concentration.Value > 0 ? filled / rx.Concentration.Value : 0;
    return dose.Drug.Primary is { } d && PumpFleet.Domain.Drugs.DoseLimits.ByDrug.TryGetValue(d, out var limit)
        && dose.MaxMcgPerDay * factor > limit.MaxMcgPerDay * (1 + PumpFleet.Domain.Drugs.ConcentrationUnits.RelativeTolerance);
}

static double Rate(FleetReplay r, string serial) => r.Pumps.TryGetValue(serial, out var s) ? ProgrammedRate.DailyRate(s.Prescription) : 0;

static string Describe(string kind) => kind switch
{
    AnomalyKinds.DepletionRisk => "the ledger projects the low-reservoir level within 72 h (refill due)",
    AnomalyKinds.BatteryEndOfLife => "natural ERI / End of Service of an old pump",
    AnomalyKinds.Silent => "an ordinary hub outage longer than the 24 h window",
    AnomalyKinds.UnderInfusion => "the reservoir ran dry after a missed refill (measured empty while the motor runs)",
    _ => kind,
};
