using PumpFleet.Contracts.Events;
using PumpFleet.Contracts.Views;

namespace PumpFleet.Domain.Therapies;

/// <summary>
/// A therapy folded from its stream: the trial, its response and decision, the pumps implanted one after another, and
/// the explant that ends it. Only <see cref="TherapyDecisions"/> decides what may be appended; the fold trusts the
/// stream.
/// </summary>
public sealed class TherapyState
{
    private readonly List<TherapyPumpView> _pumps = [];
    private readonly List<TherapyEvent> _events = [];

    /// <summary>The pseudonymous id.</summary>
    public required string Id { get; init; }

    /// <summary>Events folded (the stream version).</summary>
    public long Version { get; private set; }

    /// <summary>True once <c>therapy.opened</c> is folded.</summary>
    public bool Exists => OpenedAt is not null;

    public DateTimeOffset? OpenedAt { get; private set; }
    public string? Indication { get; private set; }

    /// <summary>Trials recorded, in order.</summary>
    public int Trials { get; private set; }

    /// <summary>The kind of the latest trial.</summary>
    public string? LastTrialKind { get; private set; }

    /// <summary>True once a response was recorded.</summary>
    public bool HasResponse { get; private set; }

    /// <summary>The decision, once made.</summary>
    public bool? Proceed { get; private set; }

    /// <summary>The pump implanted now.</summary>
    public string? CurrentSerial { get; private set; }

    public DateTimeOffset? FirstImplantAt { get; private set; }
    public DateTimeOffset? EndedAt { get; private set; }

    /// <summary>Event time of the latest event: a new event may not be earlier.</summary>
    public DateTimeOffset? LastAt { get; private set; }

    /// <summary>Every pump, in implant order.</summary>
    public IReadOnlyList<TherapyPumpView> Pumps => _pumps;

    /// <summary>True when the therapy ended (explanted, or not proceeding after the trial).</summary>
    public bool Ended => EndedAt is not null;

    /// <summary>The phase (<see cref="TherapyPhaseNames"/>), or null when the therapy does not exist.</summary>
    public string? Phase => !Exists ? null
        : CurrentSerial is not null ? TherapyPhaseNames.Implanted
        : _pumps.Count > 0 ? TherapyPhaseNames.Explanted
        : Proceed == false ? TherapyPhaseNames.NotProceeding
        : LastTrialKind switch
        {
            "single-dose" => TherapyPhaseNames.TrialSingleDose,
            "multi-dose" => TherapyPhaseNames.TrialMultiDose,
            "continuous" => TherapyPhaseNames.TrialContinuous,
            _ => TherapyPhaseNames.Opened,
        };

    /// <summary>Folds one event of the therapy's stream.</summary>
    public void Apply(TherapyEvent e)
    {
        ArgumentNullException.ThrowIfNull(e);
        Version++;
        _events.Add(e);
        LastAt = LastAt is { } l && l > e.At ? l : e.At;
        switch (e)
        {
            case TherapyOpened o:
                OpenedAt = o.At;
                Indication = o.Indication;
                break;
            case TherapyTrialRecorded t:
                Trials++;
                LastTrialKind = t.Kind;
                break;
            case TherapyResponseRecorded:
                HasResponse = true;
                break;
            case TherapyDecided d:
                Proceed = d.Proceed;
                if (!d.Proceed)
                {
                    EndedAt = d.At;
                }

                break;
            case PumpImplanted i:
                CurrentSerial = i.Serial;
                FirstImplantAt ??= i.At;
                _pumps.Add(new TherapyPumpView(i.Serial, i.At, null, null));
                break;
            case PumpExplanted x:
                var k = _pumps.FindLastIndex(p => p.Serial == x.Serial && p.ExplantedAt is null);
                if (k >= 0)
                {
                    _pumps[k] = _pumps[k] with { ExplantedAt = x.At, ExplantReason = x.Reason };
                }

                if (CurrentSerial == x.Serial)
                {
                    CurrentSerial = null;
                }

                if (x.Reason != "replacement")
                {
                    EndedAt = x.At;
                }

                break;
        }
    }

    /// <summary>
    /// The therapy as it stood at <paramref name="at"/>: the stream's events (in stream order) whose clinical time is at
    /// or before it, folded. A pump's as-of view shows this phase, not today's.
    /// </summary>
    public static TherapyState AsOf(string id, IEnumerable<TherapyEvent> events, DateTimeOffset at)
    {
        ArgumentNullException.ThrowIfNull(events);
        var state = new TherapyState { Id = id };
        foreach (var e in events)
        {
            if (e.At <= at)
            {
                state.Apply(e);
            }
        }

        return state;
    }

    /// <summary>The view the grain serves.</summary>
    public TherapyView ToView() => new()
    {
        Id = Id,
        Phase = Phase,
        Indication = Indication,
        OpenedAt = OpenedAt,
        CurrentSerial = CurrentSerial,
        ImplantedAt = FirstImplantAt,
        EndedAt = EndedAt,
        Pumps = [.. _pumps],
        Events = [.. _events.Select(TherapyTimeline.EntryOf)],
        Version = Version,
    };
}
