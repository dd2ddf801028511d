using System.Collections.Frozen;
using PumpFleet.Contracts.Events;

namespace PumpFleet.Contracts.Json;

/// <summary>
/// The stable type names under which events are stored and sent. Device events use the hub protocol's
/// <c>type</c>; platform events use names of the same shape. A name is never reused or renamed.
/// </summary>
public static class EventTypes
{
    private static readonly (string Name, Type Type)[] All =
    [
        ("therapy.phase", typeof(TherapyPhaseChanged)),
        ("prescription.set", typeof(PrescriptionSet)),
        ("dose.delivered", typeof(DoseDelivered)),
        ("bolus.requested", typeof(BolusRequested)),
        ("reservoir.level", typeof(ReservoirLevelReported)),
        ("refill", typeof(RefillPerformed)),
        ("delivery.state", typeof(DeliveryStateChanged)),
        ("alarm.raised", typeof(AlarmRaised)),
        ("alarm.cleared", typeof(AlarmCleared)),
        ("status", typeof(StatusReported)),
        ("pain.reported", typeof(PainReported)),
        ("events.lost", typeof(EventsLost)),
        ("device.identified", typeof(DeviceIdentified)),
        ("pump.paired", typeof(PumpPaired)),
        ("gap.recorded", typeof(GapRecorded)),
        ("seqs.rejected", typeof(SeqsRejected)),
        ("anomaly.detected", typeof(AnomalyDetected)),
        ("anomaly.acknowledged", typeof(AnomalyAcknowledged)),
        ("anomaly.resolved", typeof(AnomalyResolved)),
        ("flow-correction.changed", typeof(FlowCorrectionChanged)),
        ("therapy.opened", typeof(TherapyOpened)),
        ("therapy.trial", typeof(TherapyTrialRecorded)),
        ("therapy.response", typeof(TherapyResponseRecorded)),
        ("therapy.decision", typeof(TherapyDecided)),
        ("therapy.implant", typeof(PumpImplanted)),
        ("therapy.explant", typeof(PumpExplanted)),
        ("implant.claimed", typeof(ImplantClaimed)),
    ];

    private static readonly FrozenDictionary<string, Type> ByName = All.ToFrozenDictionary(x => x.Name, x => x.Type, StringComparer.Ordinal);
    private static readonly FrozenDictionary<Type, string> ByType = All.ToFrozenDictionary(x => x.Type, x => x.Name);

    /// <summary>The device event types of hub protocol v1.</summary>
    public static readonly FrozenSet<string> DeviceTypeNames = All.Where(x => x.Type.IsAssignableTo(typeof(DeviceEvent)))
        .Select(x => x.Name).ToFrozenSet(StringComparer.Ordinal);

    /// <summary>The stored name of an event's type.</summary>
    public static string NameOf(PumpEvent e) => NameOf(e.GetType());

    /// <summary>The stored name of an event type.</summary>
    public static string NameOf(Type t) =>
        ByType.TryGetValue(t, out var name) ? name : throw new ArgumentException($"{t.Name} is not a registered event type.", nameof(t));

    /// <summary>The CLR type for a stored name, or null for an unknown name.</summary>
    public static Type? TypeOf(string name) => ByName.GetValueOrDefault(name);
}
