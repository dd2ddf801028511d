using System.Globalization;
using System.Text;
using PumpFleet.Domain.Detection;
using PumpFleet.Simulator.Faults;

namespace PumpFleet.DetectionScoring;

/// <summary>Matches detections with the simulator's ground truth.</summary>
public static class Scoring
{
    /// <summary>Detector kinds that report a fault, and the injected fault kinds each may legitimately find.</summary>
    public static readonly IReadOnlyDictionary<string, string[]> Explains = new Dictionary<string, string[]>(StringComparer.Ordinal)
    {
        [AnomalyKinds.FlowStall] = [FaultKind.FullStall, FaultKind.IntermittentStall],
        // An occluded catheter or an emptied (pocket-filled) reservoir stops the level falling while the motor runs.
        [AnomalyKinds.UnderInfusion] = [FaultKind.UnderInfusion, FaultKind.CatheterOcclusion, FaultKind.PocketFill],
        // At the next refill a pocket fill shows as "less came back than expected", like over-infusion (§3.3, §3.5).
        [AnomalyKinds.OverInfusion] = [FaultKind.OverInfusion, FaultKind.PocketFill],
        [AnomalyKinds.RefillDiscrepancy] = [FaultKind.PocketFill, FaultKind.OverInfusion, FaultKind.UnderInfusion, FaultKind.CatheterOcclusion],
        [AnomalyKinds.BatteryEndOfLife] = [FaultKind.BatteryFailure],
        [AnomalyKinds.Silent] = [FaultKind.SilentHub],
        [AnomalyKinds.RefillMismatch] = [FaultKind.WrongConcentration],
        // A wrong strength multiplies the dose the pump delivers; above the label's maximum it is also dose-above-limit.
        [AnomalyKinds.DoseAboveLimit] = [FaultKind.WrongConcentration],
    };

    /// <summary>Goal window per fault kind (null: report recall by the end of the run only).</summary>
    public static TimeSpan? Goal(string faultKind, TimeSpan reportingInterval) => faultKind switch
    {
        FaultKind.FullStall => reportingInterval,
        FaultKind.UnderInfusion or FaultKind.OverInfusion => TimeSpan.FromDays(7),
        _ => null,
    };

    /// <summary>How long after a fault ends a detection still counts as caused by it (refill-based findings lag).</summary>
    public static TimeSpan Grace(string faultKind) => faultKind switch
    {
        FaultKind.FullStall or FaultKind.IntermittentStall => TimeSpan.FromDays(1),
        FaultKind.SilentHub => TimeSpan.FromDays(2),
        _ => TimeSpan.FromDays(90),
    };

    /// <summary>Whether a detection is a natural condition rather than a fault report (not scored for precision).</summary>
    public static bool IsCondition(Detection d) =>
        d.Kind == AnomalyKinds.DepletionRisk ||
        (d.Kind == AnomalyKinds.BatteryEndOfLife && !d.Summary.StartsWith("Low Battery Reset", StringComparison.Ordinal)) ||
        (d.Kind == AnomalyKinds.UnderInfusion && d.Summary.Contains("the motor runs dry", StringComparison.Ordinal));

    /// <summary>Silent detections are faults when a silent hub explains them, else ordinary outages (real silences).</summary>
    public static bool IsOutage(Detection d) => d.Kind == AnomalyKinds.Silent;

    public static bool Matches(Detection d, GroundTruthRecord t, DateTimeOffset runEnd) =>
        d.Serial == t.Serial && Explains.TryGetValue(d.Kind, out var kinds) && kinds.Contains(t.Kind)
        && d.At >= t.Start - TimeSpan.FromHours(1) && d.At <= (t.End ?? runEnd) + Grace(t.Kind);

    public static string Median(IReadOnlyList<TimeSpan> xs)
    {
        if (xs.Count == 0)
        {
            return "–";
        }

        var s = xs.OrderBy(x => x).ToList();
        var m = s.Count % 2 == 1 ? s[s.Count / 2] : (s[(s.Count / 2) - 1] + s[s.Count / 2]) / 2;
        return m.TotalHours < 48
            ? string.Create(CultureInfo.InvariantCulture, $"{m.TotalHours:0.#} h")
            : string.Create(CultureInfo.InvariantCulture, $"{m.TotalDays:0.#} d");
    }

    public static string Ratio(int num, int den) => den == 0
        ? "–"
        : string.Create(CultureInfo.InvariantCulture, $"{(double)num / den:0.000} ({num}/{den})");

    public static void Line(StringBuilder sb, params object[] cells) =>
        sb.Append("| ").Append(string.Join(" | ", cells.Select(c => Convert.ToString(c, CultureInfo.InvariantCulture)))).AppendLine(" |");
}
