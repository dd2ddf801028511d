using PumpFleet.Contracts.Events;
using PumpFleet.Domain.Detection;

namespace PumpFleet.Domain.Pumps;

/// <summary>
/// A copy of everything in <see cref="PumpState"/> that device events fold into, taken right after the event of
/// <see cref="Seq"/> was folded in seq order. The platform part (hub, device, gaps, anomalies, versions) is not
/// copied: it does not depend on the order of device events. A member added to the device fold must be added here,
/// or the re-fold loses it (the order-independence property test fails when that happens).
/// </summary>
public sealed class FoldCheckpoint
{
    public long Seq { get; set; }
    public string? Phase { get; set; }
    public string? Indication { get; set; }
    public PrescriptionSet? Prescription { get; set; }
    public string? DeliveryState { get; set; }
    public string? StopReason { get; set; }
    public string? Motor { get; set; }
    public double? BatteryPct { get; set; }
    public double? BatteryV { get; set; }
    public double? TempC { get; set; }
    public int? LastPainScore { get; set; }
    // Null when the state had none (PumpState allocates them at their first entry).
    public Dictionary<string, ActiveAlarm>? ActiveAlarms { get; set; }
    public Dictionary<string, DateTimeOffset>? AlarmChangedAt { get; set; }
    public long LastSeq { get; set; }
    public DateTimeOffset? LastDeviceAt { get; set; }
    public DateTimeOffset? LastEventAt { get; set; }
    public DateTimeOffset? PhaseAt { get; set; }
    public DateTimeOffset? PrescriptionAt { get; set; }
    public DateTimeOffset? DeliveryStateAt { get; set; }
    public DateTimeOffset? StatusAt { get; set; }
    public ReservoirLedger Ledger { get; set; } = new();
    public StallTracker Stall { get; set; } = new();
    public FlowCusum? Flow { get; set; }
    public RefillCheck Refill { get; set; } = new();
    public BatteryTrend Battery { get; set; } = new();

    /// <summary>Refill-safety state (drug in the reservoir, ziconotide fills and titration steps).</summary>
    public RefillSafety Safety { get; set; } = new();

    /// <summary>Copies the device fold of <paramref name="s"/>.</summary>
    public static FoldCheckpoint Capture(PumpState s, long seq) => new()
    {
        Seq = seq,
        Phase = s.Phase,
        Indication = s.Indication,
        Prescription = s.Prescription,
        DeliveryState = s.DeliveryState,
        StopReason = s.StopReason,
        Motor = s.Motor,
        BatteryPct = s.BatteryPct,
        BatteryV = s.BatteryV,
        TempC = s.TempC,
        LastPainScore = s.LastPainScore,
        ActiveAlarms = s.ActiveAlarmsOrNull is { } alarms ? new Dictionary<string, ActiveAlarm>(alarms, StringComparer.Ordinal) : null,
        AlarmChangedAt = s.AlarmChangedAtOrNull is { } changed ? new Dictionary<string, DateTimeOffset>(changed, StringComparer.Ordinal) : null,
        LastSeq = s.LastSeq,
        LastDeviceAt = s.LastDeviceAt,
        LastEventAt = s.LastEventAt,
        PhaseAt = s.PhaseAt,
        PrescriptionAt = s.PrescriptionAt,
        DeliveryStateAt = s.DeliveryStateAt,
        StatusAt = s.StatusAt,
        Ledger = s.Ledger.Clone(),
        Stall = s.Detectors.Stall.Clone(),
        Flow = s.Detectors.CloneFlow(),
        Refill = s.Detectors.Refill.Clone(),
        Battery = s.Detectors.Battery.Clone(),
        Safety = s.Detectors.Safety.Clone(),
    };

    /// <summary>Puts the copied device fold back into <paramref name="s"/> (copies again: the checkpoint stays reusable).</summary>
    public void RestoreTo(PumpState s)
    {
        s.Phase = Phase;
        s.Indication = Indication;
        s.Prescription = Prescription;
        s.DeliveryState = DeliveryState;
        s.StopReason = StopReason;
        s.Motor = Motor;
        s.BatteryPct = BatteryPct;
        s.BatteryV = BatteryV;
        s.TempC = TempC;
        s.LastPainScore = LastPainScore;
        s.RestoreAlarms(
            ActiveAlarms is null ? null : new Dictionary<string, ActiveAlarm>(ActiveAlarms, StringComparer.Ordinal),
            AlarmChangedAt is null ? null : new Dictionary<string, DateTimeOffset>(AlarmChangedAt, StringComparer.Ordinal));
        s.LastSeq = LastSeq;
        s.LastDeviceAt = LastDeviceAt;
        s.LastEventAt = LastEventAt;
        s.PhaseAt = PhaseAt;
        s.PrescriptionAt = PrescriptionAt;
        s.DeliveryStateAt = DeliveryStateAt;
        s.StatusAt = StatusAt;
        s.Ledger = Ledger.Clone();
        s.Detectors.Stall = Stall.Clone();
        s.Detectors.RestoreFlow(Flow);
        s.Detectors.Refill = Refill.Clone();
        s.Detectors.Battery = Battery.Clone();
        s.Detectors.Safety = Safety.Clone();
    }
}
