namespace PumpFleet.Contracts.Events;

// A therapy's own stream (`therapy:{id}`, StreamIds.Therapy) holds these platform events. They are written by the
// therapy grain from clinicians' HTTP commands (docs/api.md), never by a hub: they are not device events, so the
// gateway refuses them on the hub topics. `At` is the clinical time the clinician gives (when it happened), and every
// event carries who recorded it; the HTTP audit trail records the request as well.

/// <summary>Base of the events in a therapy's stream: who recorded it (the signed-in user).</summary>
[GenerateSerializer, Immutable, Alias("pumpfleet.TherapyEvent.v1")]
public abstract record TherapyEvent : PumpEvent
{
    /// <summary>The signed-in user who recorded the event.</summary>
    [Id(0)] public required string By { get; init; }
    /// <summary>Optional free text (at most 2000 characters); never a patient's name.</summary>
    [Id(1)] public string? Note { get; init; }
}

/// <summary><c>therapy.opened</c>: the clinic registered a therapy under its pseudonymous id.</summary>
[GenerateSerializer, Immutable, Alias("pumpfleet.TherapyOpened.v1")]
public sealed record TherapyOpened : TherapyEvent
{
    /// <summary>Optional, one of <see cref="Vocabulary.Indications"/>.</summary>
    [Id(0)] public string? Indication { get; init; }
}

/// <summary><c>therapy.trial</c>: a screening trial was given.</summary>
[GenerateSerializer, Immutable, Alias("pumpfleet.TherapyTrialRecorded.v1")]
public sealed record TherapyTrialRecorded : TherapyEvent
{
    /// <summary>One of <see cref="Vocabulary.TrialKinds"/>: <c>single-dose</c>, <c>multi-dose</c> (several doses without a pump) or <c>continuous</c> (an external pump).</summary>
    [Id(0)] public required string Kind { get; init; }
    /// <summary>Optional drug given in the trial.</summary>
    [Id(1)] public string? Drug { get; init; }
    /// <summary>Number of doses (1 for a single dose; ≥ 2 for a multi-dose trial); null for a continuous trial.</summary>
    [Id(2)] public int? Doses { get; init; }
    /// <summary>Identifier of the external pump of a continuous trial (required for that kind).</summary>
    [Id(3)] public string? ExternalPump { get; init; }
    /// <summary>When the trial ended (optional; at or after <c>At</c>, which is when it started).</summary>
    [Id(4)] public DateTimeOffset? EndedAt { get; init; }
}

/// <summary><c>therapy.response</c>: the trial's response, pain on the 0–10 numeric rating scale before and after.</summary>
[GenerateSerializer, Immutable, Alias("pumpfleet.TherapyResponseRecorded.v1")]
public sealed record TherapyResponseRecorded : TherapyEvent
{
    /// <summary>Pain score before the trial, 0–10 NRS.</summary>
    [Id(0)] public required int PainBefore { get; init; }
    /// <summary>Pain score after the trial, 0–10 NRS.</summary>
    [Id(1)] public required int PainAfter { get; init; }
}

/// <summary><c>therapy.decision</c>: whether to proceed to an implanted pump after the trial.</summary>
[GenerateSerializer, Immutable, Alias("pumpfleet.TherapyDecided.v1")]
public sealed record TherapyDecided : TherapyEvent
{
    /// <summary>True: proceed to implant; false: do not proceed (the therapy ends).</summary>
    [Id(0)] public required bool Proceed { get; init; }
}

/// <summary><c>therapy.implant</c>: a pump (by serial) was implanted in this therapy.</summary>
[GenerateSerializer, Immutable, Alias("pumpfleet.PumpImplanted.v1")]
public sealed record PumpImplanted : TherapyEvent
{
    /// <summary>The pump's serial (the protocol's identifier rule).</summary>
    [Id(0)] public required string Serial { get; init; }
}

/// <summary>
/// <c>therapy.explant</c>: the implanted pump was removed. Reason <c>replacement</c> is always followed, in the same
/// append, by the <c>therapy.implant</c> of the new pump; any other reason ends the therapy.
/// </summary>
[GenerateSerializer, Immutable, Alias("pumpfleet.PumpExplanted.v1")]
public sealed record PumpExplanted : TherapyEvent
{
    /// <summary>The pump's serial.</summary>
    [Id(0)] public required string Serial { get; init; }
    /// <summary>One of <see cref="Vocabulary.ExplantReasons"/>.</summary>
    [Id(1)] public required string Reason { get; init; }
}

/// <summary>
/// <c>implant.claimed</c>, the one event of a serial's stream <c>implant-claim:{serial}</c>: the therapy that implanted
/// the pump. Appended by the serial's claim grain before the therapy's <c>therapy.implant</c>, at version 1 only, so
/// two therapies implanting one serial at the same time cannot both succeed.
/// </summary>
[GenerateSerializer, Immutable, Alias("pumpfleet.ImplantClaimed.v1")]
public sealed record ImplantClaimed : PumpEvent
{
    /// <summary>The pump's serial.</summary>
    [Id(0)] public required string Serial { get; init; }
    /// <summary>The therapy that holds the serial.</summary>
    [Id(1)] public required string TherapyId { get; init; }
    /// <summary>The signed-in user whose implant command claimed it.</summary>
    [Id(2)] public required string By { get; init; }
}
