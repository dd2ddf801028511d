namespace PumpFleet.Contracts.Views;

/// <summary>A therapy as its grain folds it (<c>GET /api/therapies/{id}</c> adds the pumps' timeline to it).</summary>
[GenerateSerializer, Immutable, Alias("pumpfleet.TherapyView.v1")]
public sealed record TherapyView
{
    /// <summary>The clinic's pseudonymous therapy id.</summary>
    [Id(0)] public required string Id { get; init; }
    /// <summary>See <see cref="TherapyPhaseNames"/>; null when the therapy does not exist.</summary>
    [Id(1)] public string? Phase { get; init; }
    [Id(2)] public string? Indication { get; init; }
    [Id(3)] public DateTimeOffset? OpenedAt { get; init; }
    /// <summary>The serial of the pump implanted now, if any.</summary>
    [Id(4)] public string? CurrentSerial { get; init; }
    /// <summary>When the first pump was implanted.</summary>
    [Id(5)] public DateTimeOffset? ImplantedAt { get; init; }
    /// <summary>When the therapy ended (explant other than a replacement, or a decision not to proceed).</summary>
    [Id(6)] public DateTimeOffset? EndedAt { get; init; }
    /// <summary>Every pump of the therapy, in implant order.</summary>
    [Id(7)] public required IReadOnlyList<TherapyPumpView> Pumps { get; init; }
    /// <summary>The therapy's own events (trial, response, decision, implants, explants) in order.</summary>
    [Id(8)] public required IReadOnlyList<TimelineEntry> Events { get; init; }
    /// <summary>Stream version (0: the therapy does not exist).</summary>
    [Id(9)] public long Version { get; init; }
}

/// <summary>One pump of a therapy and the window during which it was implanted.</summary>
[GenerateSerializer, Immutable, Alias("pumpfleet.TherapyPumpView.v1")]
public sealed record TherapyPumpView(
    [property: Id(0)] string Serial, [property: Id(1)] DateTimeOffset ImplantedAt, [property: Id(2)] DateTimeOffset? ExplantedAt,
    [property: Id(3)] string? ExplantReason);

/// <summary>
/// One entry of a therapy timeline: a therapy event, or a refill, alarm or anomaly of one of its pumps. <see cref="Kind"/>
/// is the stored event type for therapy events (<c>therapy.trial</c>, …) and <c>refill</c>, <c>alarm</c>,
/// <c>anomaly</c> for the pumps' items.
/// </summary>
[GenerateSerializer, Immutable, Alias("pumpfleet.TimelineEntry.v1")]
public sealed record TimelineEntry
{
    [Id(0)] public required DateTimeOffset At { get; init; }
    [Id(1)] public required string Kind { get; init; }
    /// <summary>The pump it concerns, if any.</summary>
    [Id(2)] public string? Serial { get; init; }
    /// <summary>One sentence for a human.</summary>
    [Id(3)] public required string Summary { get; init; }
    /// <summary><c>critical</c>, <c>warning</c>, <c>non-critical</c>, <c>info</c>, or null.</summary>
    [Id(4)] public string? Severity { get; init; }
    /// <summary>Who recorded it (therapy events), if known.</summary>
    [Id(5)] public string? By { get; init; }
    /// <summary>The structured fields of the entry (scores, reason, volumes, codes…).</summary>
    [Id(6)] public IReadOnlyDictionary<string, string>? Details { get; init; }
}

/// <summary>The phases of a therapy (the trial kinds and the last two are the protocol's phase names).</summary>
public static class TherapyPhaseNames
{
    /// <summary>Registered; no trial yet.</summary>
    public const string Opened = "opened";
    public const string TrialSingleDose = "trial-single-dose";
    public const string TrialMultiDose = "trial-multi-dose";
    public const string TrialContinuous = "trial-continuous";
    /// <summary>The trial's decision was not to proceed: the therapy ended without an implant.</summary>
    public const string NotProceeding = "not-proceeding";
    public const string Implanted = "implanted";
    public const string Explanted = "explanted";
}
