namespace PumpFleet.Contracts.Events;

/// <summary><c>device.identified</c>: the batch's <c>device</c> object first seen, or changed (e.g. a firmware update).</summary>
[GenerateSerializer, Immutable, Alias("pumpfleet.DeviceIdentified.v1")]
public sealed record DeviceIdentified : PumpEvent
{
    /// <summary>The device description as the hub sent it.</summary>
    [Id(0)] public required DeviceInfo Device { get; init; }
}

/// <summary><c>pump.paired</c>: the pump was paired with a hub; only that hub may publish for it.</summary>
[GenerateSerializer, Immutable, Alias("pumpfleet.PumpPaired.v1")]
public sealed record PumpPaired : PumpEvent
{
    /// <summary>The hub id.</summary>
    [Id(0)] public required string HubId { get; init; }
    /// <summary>Who paired it (operator or provisioning process).</summary>
    [Id(1)] public string? By { get; init; }
}

/// <summary><c>gap.recorded</c>: seqs <see cref="FromSeq"/>..<see cref="ToSeq"/> (inclusive) have not arrived.</summary>
[GenerateSerializer, Immutable, Alias("pumpfleet.GapRecorded.v1")]
public sealed record GapRecorded : PumpEvent
{
    /// <summary>First missing seq.</summary>
    [Id(0)] public required long FromSeq { get; init; }
    /// <summary>Last missing seq.</summary>
    [Id(1)] public required long ToSeq { get; init; }
}

/// <summary>
/// <c>seqs.rejected</c>: the hub sent events with these seqs and the platform refused them for their content (the
/// rejects were answered and quarantined). The seqs are accounted for: they no longer hold the acknowledged
/// watermark back, and a later valid event with the same seq is still accepted.
/// </summary>
[GenerateSerializer, Immutable, Alias("pumpfleet.SeqsRejected.v1")]
public sealed record SeqsRejected : PumpEvent
{
    /// <summary>The refused seqs with their reject codes, ascending.</summary>
    [Id(0)] public required IReadOnlyList<RejectedSeq> Rejected { get; init; }
}

/// <summary>One refused seq and its reject code.</summary>
[GenerateSerializer, Immutable, Alias("pumpfleet.RejectedSeq.v1")]
public sealed record RejectedSeq([property: Id(0)] long Seq, [property: Id(1)] string Code);

/// <summary><c>anomaly.detected</c>: a platform detector opened an anomaly.</summary>
[GenerateSerializer, Immutable, Alias("pumpfleet.AnomalyDetected.v1")]
public sealed record AnomalyDetected : PumpEvent
{
    /// <summary>Stable id, unique across the fleet.</summary>
    [Id(0)] public required string AnomalyId { get; init; }
    /// <summary>One of <see cref="Vocabulary.AnomalyKinds"/>.</summary>
    [Id(1)] public required string Kind { get; init; }
    /// <summary><c>critical</c>, <c>warning</c> or <c>info</c>.</summary>
    [Id(2)] public required string Severity { get; init; }
    /// <summary>One sentence for a human.</summary>
    [Id(3)] public required string Summary { get; init; }
    /// <summary>The numbers the detector used.</summary>
    [Id(4)] public required IReadOnlyDictionary<string, double> Evidence { get; init; }
    /// <summary>
    /// Platform receive time of the data after which the anomaly was decided (the wall clock for decisions on time).
    /// <c>at</c> is the event time at which the data showed the condition; <c>raisedAt</c> − <c>at</c> is how late
    /// that data reached the platform (a refill uploaded a day late is found at its own event time, raised a day
    /// later). Absent on anomalies stored before it existed.
    /// </summary>
    [Id(5)] public DateTimeOffset? RaisedAt { get; init; }
}

/// <summary><c>anomaly.acknowledged</c>: a person took ownership of an anomaly.</summary>
[GenerateSerializer, Immutable, Alias("pumpfleet.AnomalyAcknowledged.v1")]
public sealed record AnomalyAcknowledged : PumpEvent
{
    /// <summary>The anomaly.</summary>
    [Id(0)] public required string AnomalyId { get; init; }
    /// <summary>Who.</summary>
    [Id(1)] public required string By { get; init; }
    /// <summary>Free text.</summary>
    [Id(2)] public string? Note { get; init; }
}

/// <summary><c>anomaly.resolved</c>: an anomaly was closed, by a person or automatically when its condition cleared.</summary>
[GenerateSerializer, Immutable, Alias("pumpfleet.AnomalyResolved.v1")]
public sealed record AnomalyResolved : PumpEvent
{
    /// <summary>The anomaly.</summary>
    [Id(0)] public required string AnomalyId { get; init; }
    /// <summary>Who (<c>system</c> when automatic).</summary>
    [Id(1)] public required string By { get; init; }
    /// <summary>Free text.</summary>
    [Id(2)] public string? Note { get; init; }
    /// <summary>True when the detector saw the condition clear.</summary>
    [Id(3)] public bool Automatic { get; init; }
}

/// <summary>
/// <c>flow-correction.changed</c>: the pump's reservoir forecasts take (or stop taking) the flow factor of an open
/// <c>cohort-flow-deviation</c> of its lot, model or firmware. Refills elsewhere in the cohort revealed a systematic
/// deviation, so this pump very likely runs at that factor too, before its own refill can show it (most pumps have no
/// level sensor). Written by the pump's grain when the cohort flow job tells it; all fields null = no correction.
/// </summary>
[GenerateSerializer, Immutable, Alias("pumpfleet.FlowCorrectionChanged.v1")]
public sealed record FlowCorrectionChanged : PumpEvent
{
    /// <summary>The <c>cohort-flow-deviation</c> anomaly that is the source; null when the correction ends.</summary>
    [Id(0)] public string? AnomalyId { get; init; }
    /// <summary>The cohort's stream id, <c>cohort-flow:{lot|model|firmware}:{value}</c>.</summary>
    [Id(1)] public string? Cohort { get; init; }
    /// <summary>Estimated real over motor-reported consumption, e.g. 1.15.</summary>
    [Id(2)] public double? Factor { get; init; }
    /// <summary>When the source anomaly was raised.</summary>
    [Id(3)] public DateTimeOffset? Since { get; init; }
}
