namespace PumpFleet.Contracts.Events;

/// <summary><c>therapy.phase</c>: the patient's therapy moved to a new phase.</summary>
[GenerateSerializer, Immutable, Alias("pumpfleet.TherapyPhaseChanged.v1")]
public sealed record TherapyPhaseChanged : DeviceEvent
{
    /// <summary>One of <see cref="Vocabulary.Phases"/>.</summary>
    [Id(0)] public required string Phase { get; init; }
    /// <summary>Optional, one of <see cref="Vocabulary.Indications"/>.</summary>
    [Id(1)] public string? Indication { get; init; }
}

/// <summary><c>prescription.set</c>: a new prescription was programmed.</summary>
[GenerateSerializer, Immutable, Alias("pumpfleet.PrescriptionSet.v1")]
public sealed record PrescriptionSet : DeviceEvent
{
    /// <summary>Drug name, e.g. <c>morphine</c>, <c>baclofen</c>.</summary>
    [Id(0)] public required string Drug { get; init; }
    /// <summary>Drug concentration.</summary>
    [Id(1)] public required Concentration Concentration { get; init; }
    /// <summary><c>continuous</c> or <c>flex</c>.</summary>
    [Id(2)] public required string Mode { get; init; }
    /// <summary>Rate for <c>continuous</c> mode.</summary>
    [Id(3)] public double? RateMlPerDay { get; init; }
    /// <summary>Time-of-day steps for <c>flex</c> mode, ordered by start.</summary>
    [Id(4)] public IReadOnlyList<FlexStep>? Schedule { get; init; }
    /// <summary>Optional patient-bolus settings.</summary>
    [Id(5)] public BolusSettings? Bolus { get; init; }
    /// <summary>Optional low-reservoir alarm volume set by the clinician.</summary>
    [Id(6)] public double? LowReservoirAlarmMl { get; init; }
}

/// <summary><c>dose.delivered</c>: what the pump's motor delivered from <see cref="From"/> to <c>At</c>.</summary>
[GenerateSerializer, Immutable, Alias("pumpfleet.DoseDelivered.v1")]
public sealed record DoseDelivered : DeviceEvent
{
    /// <summary>Start of the delivery interval.</summary>
    [Id(0)] public required DateTimeOffset From { get; init; }
    /// <summary>Delivered volume, ≥ 0.</summary>
    [Id(1)] public required double VolumeMl { get; init; }
    /// <summary>One of <see cref="Vocabulary.DoseKinds"/>.</summary>
    [Id(2)] public required string Kind { get; init; }
}

/// <summary><c>bolus.requested</c>: the patient asked for a bolus.</summary>
[GenerateSerializer, Immutable, Alias("pumpfleet.BolusRequested.v1")]
public sealed record BolusRequested : DeviceEvent
{
    /// <summary>Whether the pump granted it.</summary>
    [Id(0)] public required bool Granted { get; init; }
    /// <summary>Why it was refused: <c>lockout</c> or <c>daily-limit</c>.</summary>
    [Id(1)] public string? Reason { get; init; }
}

/// <summary><c>reservoir.level</c>: a reservoir volume reading.</summary>
[GenerateSerializer, Immutable, Alias("pumpfleet.ReservoirLevelReported.v1")]
public sealed record ReservoirLevelReported : DeviceEvent
{
    /// <summary>Volume, ≥ 0.</summary>
    [Id(0)] public required double VolumeMl { get; init; }
    /// <summary><c>measured</c> (a sensor) or <c>estimated</c> (the pump's own arithmetic).</summary>
    [Id(1)] public required string Source { get; init; }
}

/// <summary><c>refill</c>: the reservoir was emptied (residual aspirated) and refilled.</summary>
[GenerateSerializer, Immutable, Alias("pumpfleet.RefillPerformed.v1")]
public sealed record RefillPerformed : DeviceEvent
{
    /// <summary>Residual the programmer predicted.</summary>
    [Id(0)] public required double ExpectedResidualMl { get; init; }
    /// <summary>Residual actually aspirated by syringe.</summary>
    [Id(1)] public required double AspiratedResidualMl { get; init; }
    /// <summary>Volume injected.</summary>
    [Id(2)] public required double AddedMl { get; init; }
    /// <summary>Drug filled.</summary>
    [Id(3)] public required string Drug { get; init; }
    /// <summary>Concentration filled.</summary>
    [Id(4)] public required Concentration Concentration { get; init; }
}

/// <summary><c>delivery.state</c>: delivery started or stopped.</summary>
[GenerateSerializer, Immutable, Alias("pumpfleet.DeliveryStateChanged.v1")]
public sealed record DeliveryStateChanged : DeviceEvent
{
    /// <summary><c>running</c> or <c>stopped</c>.</summary>
    [Id(0)] public required string State { get; init; }
    /// <summary>Optional, one of <see cref="Vocabulary.StopReasons"/>.</summary>
    [Id(1)] public string? Reason { get; init; }
}

/// <summary><c>alarm.raised</c>: the pump raised an alarm.</summary>
[GenerateSerializer, Immutable, Alias("pumpfleet.AlarmRaised.v1")]
public sealed record AlarmRaised : DeviceEvent
{
    /// <summary>One of <see cref="Vocabulary.AlarmCodes"/>.</summary>
    [Id(0)] public required string Code { get; init; }
    /// <summary><c>critical</c> or <c>non-critical</c>.</summary>
    [Id(1)] public required string Severity { get; init; }
}

/// <summary><c>alarm.cleared</c>: an alarm stopped.</summary>
[GenerateSerializer, Immutable, Alias("pumpfleet.AlarmCleared.v1")]
public sealed record AlarmCleared : DeviceEvent
{
    /// <summary>The alarm code.</summary>
    [Id(0)] public required string Code { get; init; }
}

/// <summary><c>status</c>: periodic device status.</summary>
[GenerateSerializer, Immutable, Alias("pumpfleet.StatusReported.v1")]
public sealed record StatusReported : DeviceEvent
{
    /// <summary>Battery charge, 0–100.</summary>
    [Id(0)] public double? BatteryPct { get; init; }
    /// <summary>Battery voltage.</summary>
    [Id(1)] public double? BatteryV { get; init; }
    /// <summary>Device temperature.</summary>
    [Id(2)] public double? TempC { get; init; }
    /// <summary><c>running</c>, <c>stopped</c> or <c>stalled</c>.</summary>
    [Id(3)] public string? Motor { get; init; }
}

/// <summary><c>pain.reported</c>: a patient-reported pain score.</summary>
[GenerateSerializer, Immutable, Alias("pumpfleet.PainReported.v1")]
public sealed record PainReported : DeviceEvent
{
    /// <summary>Score 0–10.</summary>
    [Id(0)] public required int Score { get; init; }
}

/// <summary>
/// <c>events.lost</c>: the hub or the pump declares that seqs <see cref="FromSeq"/>..<see cref="ToSeq"/> (inclusive,
/// both below this event's own seq) are gone for good. A lost range is a clinical fact: it is stored like any
/// device event, closes the gap and lets the acknowledged watermark move past it.
/// </summary>
[GenerateSerializer, Immutable, Alias("pumpfleet.EventsLost.v1")]
public sealed record EventsLost : DeviceEvent
{
    /// <summary>First lost seq.</summary>
    [Id(0)] public required long FromSeq { get; init; }
    /// <summary>Last lost seq.</summary>
    [Id(1)] public required long ToSeq { get; init; }
    /// <summary>One of <see cref="Vocabulary.LossReasons"/>.</summary>
    [Id(2)] public required string Reason { get; init; }
}
