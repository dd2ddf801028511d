using PumpFleet.Contracts.Events;

namespace PumpFleet.Contracts.Views;

/// <summary>A pump's state as the API serves it (protocol.md §2, <c>GET /api/pumps/{serial}</c>).</summary>
[GenerateSerializer, Immutable, Alias("pumpfleet.PumpView.v1")]
public sealed record PumpView
{
    [Id(0)] public required string Serial { get; init; }
    [Id(1)] public string? HubId { get; init; }
    [Id(2)] public string? Model { get; init; }
    [Id(3)] public string? Firmware { get; init; }
    [Id(4)] public string? Lot { get; init; }
    [Id(5)] public double? ReservoirCapacityMl { get; init; }
    [Id(6)] public string? Phase { get; init; }
    [Id(7)] public string? Indication { get; init; }
    [Id(8)] public string? Drug { get; init; }
    /// <summary>See <see cref="PumpStatuses"/>.</summary>
    [Id(9)] public required string Status { get; init; }
    /// <summary>The platform's own estimate of the reservoir volume at <see cref="LastEventAt"/>.</summary>
    [Id(10)] public double? ReservoirMl { get; init; }
    [Id(11)] public DateTimeOffset? ForecastEmptyAt { get; init; }
    /// <summary>When the ledger reaches the low-reservoir threshold: the refill is due before then.</summary>
    [Id(12)] public DateTimeOffset? NextRefillDueAt { get; init; }
    [Id(13)] public required IReadOnlyList<ActiveAlarmView> ActiveAlarms { get; init; }
    [Id(14)] public required IReadOnlyList<AnomalyView> OpenAnomalies { get; init; }
    /// <summary>Receive time of the newest message.</summary>
    [Id(15)] public DateTimeOffset? LastSeenAt { get; init; }
    /// <summary>Event time of the newest event.</summary>
    [Id(16)] public DateTimeOffset? LastEventAt { get; init; }
    /// <summary>Highest seq stored.</summary>
    [Id(17)] public long LastSeq { get; init; }
    [Id(18)] public PrescriptionSet? Prescription { get; init; }
    [Id(19)] public double? BatteryPct { get; init; }
    /// <summary>Seq ranges below the highest seq that are not accounted for (neither stored, rejected nor declared lost), ascending.</summary>
    [Id(20)] public required IReadOnlyList<SeqRange> Gaps { get; init; }
    [Id(21)] public required LedgerView Ledger { get; init; }
    [Id(22)] public string? DeliveryState { get; init; }
    [Id(23)] public string? Motor { get; init; }
    /// <summary>Stream version: the number of events in the pump's stream.</summary>
    [Id(24)] public long Version { get; init; }
    [Id(25)] public int? LastPainScore { get; init; }
    /// <summary>The acknowledged watermark: every seq up to it is stored, rejected or declared lost.</summary>
    [Id(26)] public long CommittedSeq { get; init; }
    /// <summary>The therapy the pump was implanted in (the clinic's pseudonymous id), from the therapies read model; null when none.</summary>
    [Id(27)] public string? TherapyId { get; init; }
    /// <summary>That therapy's phase now (<see cref="TherapyPhaseNames"/>).</summary>
    [Id(28)] public string? TherapyPhase { get; init; }
    /// <summary>When this pump was implanted in the therapy.</summary>
    [Id(29)] public DateTimeOffset? ImplantedAt { get; init; }
    /// <summary>When this pump was explanted from it, if it was.</summary>
    [Id(30)] public DateTimeOffset? ExplantedAt { get; init; }
    /// <summary>When the ledger reaches the low-reservoir threshold at the programmed rate (before any cohort correction).</summary>
    [Id(31)] public DateTimeOffset? LowReservoirAt { get; init; }
    /// <summary>Event time the forecasts are projected from (the ledger's last integrated time).</summary>
    [Id(32)] public DateTimeOffset? ForecastFrom { get; init; }
    /// <summary>
    /// The forecasts redone with the flow factor of an open <c>cohort-flow-deviation</c> of the pump's lot, model or
    /// firmware (the pump's own state, told by the cohort flow job: <c>flow-correction.changed</c>; null when none applies).
    /// </summary>
    [Id(33)] public FlowCorrectionView? FlowCorrection { get; init; }
    /// <summary>The low-reservoir level the forecasts use: the prescription's alarm volume, or the platform's default.</summary>
    [Id(34)] public double? LowReservoirMl { get; init; }
    /// <summary>
    /// Where <see cref="NextRefillDueAt"/> comes from (<see cref="RefillDueSources"/>): the ledger's low-reservoir
    /// forecast at the programmed rate, a drug rule (ziconotide stability), or that forecast corrected by the cohort
    /// flow factor of <see cref="FlowCorrection"/> (only ever earlier than the uncorrected date).
    /// </summary>
    [Id(35)] public string? NextRefillDueSource { get; init; }
    /// <summary>The refill-due date without any cohort flow correction (the ledger's or a drug rule's).</summary>
    [Id(36)] public DateTimeOffset? UncorrectedNextRefillDueAt { get; init; }
    // Ids 40 on: set by the API from the hub registry (issue 16, clinics); a gap so other additions keep their own ids.
    /// <summary>The clinic of the pump's hub (set by the API from the hub registry); null when the hub stands in none.</summary>
    [Id(40)] public string? ClinicId { get; init; }
    /// <summary>That clinic's name.</summary>
    [Id(41)] public string? ClinicName { get; init; }
}

/// <summary>Values of <see cref="PumpView.NextRefillDueSource"/>.</summary>
public static class RefillDueSources
{
    /// <summary>The ledger's low-reservoir forecast at the programmed rate.</summary>
    public const string Ledger = "ledger";
    /// <summary>A drug's own rule (ziconotide stability), earlier than the ledger's date.</summary>
    public const string DrugRule = "drug-rule";
    /// <summary>The ledger's forecast corrected by an open cohort flow deviation's factor, earlier than the uncorrected date.</summary>
    public const string CohortFlow = "cohort-flow";
}

/// <summary>
/// A pump's forecasts corrected by its cohort's flow factor: refills elsewhere in the cohort revealed a systematic
/// deviation, so this pump's reservoir very likely runs down at that factor too, before its own refill can show it.
/// </summary>
[GenerateSerializer, Immutable, Alias("pumpfleet.FlowCorrectionView.v1")]
public sealed record FlowCorrectionView
{
    /// <summary>Estimated real over motor-reported consumption, e.g. 1.15.</summary>
    [Id(0)] public double Factor { get; init; }
    /// <summary>The cohort, e.g. "lot L2201".</summary>
    [Id(1)] public required string Cohort { get; init; }
    /// <summary>The <c>cohort-flow-deviation</c> anomaly that is the correction's source.</summary>
    [Id(2)] public required string AnomalyId { get; init; }
    /// <summary>When that anomaly was raised.</summary>
    [Id(3)] public DateTimeOffset Since { get; init; }
    [Id(4)] public DateTimeOffset? LowReservoirAt { get; init; }
    [Id(5)] public DateTimeOffset? ForecastEmptyAt { get; init; }
    [Id(6)] public DateTimeOffset? NextRefillDueAt { get; init; }
}

/// <summary>Pump status values.</summary>
public static class PumpStatuses
{
    /// <summary>No event yet.</summary>
    public const string Unknown = "unknown";
    /// <summary>Delivering, nothing open.</summary>
    public const string Ok = "ok";
    /// <summary>A non-critical alarm or a warning anomaly is open.</summary>
    public const string Attention = "attention";
    /// <summary>A critical alarm or critical anomaly is open.</summary>
    public const string Critical = "critical";
    /// <summary>Delivery stopped (programming, MRI, clinician…) with nothing worse open.</summary>
    public const string Stopped = "stopped";
    /// <summary>Explanted.</summary>
    public const string Inactive = "inactive";
}

/// <summary>An inclusive range of seqs.</summary>
[GenerateSerializer, Immutable, Alias("pumpfleet.SeqRange.v1")]
public sealed record SeqRange([property: Id(0)] long From, [property: Id(1)] long To);

/// <summary>An alarm the pump raised and has not cleared.</summary>
[GenerateSerializer, Immutable, Alias("pumpfleet.ActiveAlarmView.v1")]
public sealed record ActiveAlarmView([property: Id(0)] string Code, [property: Id(1)] string Severity, [property: Id(2)] DateTimeOffset RaisedAt);

/// <summary>A platform-detected anomaly.</summary>
[GenerateSerializer, Immutable, Alias("pumpfleet.AnomalyView.v1")]
public sealed record AnomalyView
{
    [Id(0)] public required string Id { get; init; }
    [Id(1)] public required string Serial { get; init; }
    [Id(2)] public required string Kind { get; init; }
    [Id(3)] public required string Severity { get; init; }
    /// <summary><c>open</c>, <c>acknowledged</c> or <c>resolved</c>.</summary>
    [Id(4)] public required string Status { get; init; }
    [Id(5)] public required DateTimeOffset DetectedAt { get; init; }
    [Id(6)] public required string Summary { get; init; }
    [Id(7)] public required IReadOnlyDictionary<string, double> Evidence { get; init; }
    [Id(8)] public string? AcknowledgedBy { get; init; }
    [Id(9)] public DateTimeOffset? AcknowledgedAt { get; init; }
    /// <summary>
    /// Receive time of the data after which the platform decided (<see cref="DetectedAt"/> is the event time at which
    /// the data showed the condition); null for anomalies stored before it was recorded.
    /// </summary>
    [Id(10)] public DateTimeOffset? RaisedAt { get; init; }
}

/// <summary>The platform's own reservoir ledger (docs/detection.md, introduction).</summary>
[GenerateSerializer, Immutable, Alias("pumpfleet.LedgerView.v1")]
public sealed record LedgerView
{
    /// <summary>Volume in the reservoir right after the last refill (aspirated residual discarded, <c>addedMl</c> in).</summary>
    [Id(0)] public double? LevelAtRefillMl { get; init; }
    [Id(1)] public DateTimeOffset? LastRefillAt { get; init; }
    /// <summary>Volume the prescription asked for since the last refill (integrated over event time).</summary>
    [Id(2)] public double ProgrammedSinceRefillMl { get; init; }
    /// <summary>Volume the motor reported delivering since the last refill.</summary>
    [Id(3)] public double DeliveredSinceRefillMl { get; init; }
    /// <summary>Latest sensor reading, if the pump has a sensor.</summary>
    [Id(4)] public double? MeasuredMl { get; init; }
    [Id(5)] public DateTimeOffset? MeasuredAt { get; init; }
    /// <summary>Level at refill minus delivered since: the platform's estimate.</summary>
    [Id(6)] public double? EstimatedMl { get; init; }
    /// <summary>Total programmed, delivered volume over the pump's life.</summary>
    [Id(7)] public double ProgrammedTotalMl { get; init; }
    [Id(8)] public double DeliveredTotalMl { get; init; }
    [Id(9)] public int Refills { get; init; }
    /// <summary>Last refill: expected minus aspirated residual (positive = less came back than expected).</summary>
    [Id(10)] public double? LastRefillDiscrepancyMl { get; init; }
    /// <summary>Rate used for the forecast (mL/day).</summary>
    [Id(11)] public double? ForecastRateMlPerDay { get; init; }
}
