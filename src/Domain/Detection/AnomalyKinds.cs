namespace PumpFleet.Domain.Detection;

/// <summary>Anomaly kind names (the closed set is <c>Vocabulary.AnomalyKinds</c>, protocol.md §2).</summary>
public static class AnomalyKinds
{
    public const string FlowStall = "flow-stall";
    public const string UnderInfusion = "under-infusion";
    public const string OverInfusion = "over-infusion";
    public const string RefillDiscrepancy = "refill-discrepancy";
    public const string DepletionRisk = "depletion-risk";
    public const string Silent = "silent";
    public const string BatteryEndOfLife = "battery-end-of-life";
    public const string CohortSignal = "cohort-signal";
    public const string RefillMismatch = "refill-mismatch";
    public const string DoseAboveLimit = "dose-above-limit";
    public const string CohortFlowDeviation = "cohort-flow-deviation";
}
