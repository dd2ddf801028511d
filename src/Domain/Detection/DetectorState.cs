using System.Text.Json.Serialization;
using PumpFleet.Contracts.Events;
using PumpFleet.Domain.Pumps;

namespace PumpFleet.Domain.Detection;

/// <summary>
/// The detectors' accumulators, part of <see cref="PumpState"/> so that a snapshot plus tail replay rebuilds them
/// exactly. Updated only inside the fold, from events; the decisions are made afterwards by <see cref="AnomalyEngine"/>.
/// Time-based accumulators use trusted event time only: clock-suspect events (protocol.md §1, Time) are skipped.
/// </summary>
public sealed class DetectorState
{
    public StallTracker Stall { get; set; } = new();

    // The flow CUSUM only moves on measured levels, which most pumps never report (no level sensor), and with its two
    // runs it costs about 300 bytes per active pump: it is allocated at the first use that may change it (issue 15,
    // memory per active pump). The detectors read it through FlowForReading, which does not allocate; snapshots keep
    // their shape (a CUSUM never started is written as one, and read back as none).
    private FlowCusum? _flow;

    /// <summary>The under-/over-infusion CUSUM (allocated on first use: readers use <see cref="FlowForReading"/>).</summary>
    [JsonIgnore]
    public FlowCusum Flow
    {
        get => _flow ??= new();
        set => _flow = value;
    }

    /// <summary>The CUSUM to read without changing it: a shared one never started when this pump's has not been.</summary>
    [JsonIgnore]
    public FlowCusum FlowForReading => _flow ?? FlowCusum.NeverStarted;

    [JsonInclude]
    [JsonPropertyName("flow")]
    private FlowCusum FlowJson
    {
        get => _flow ?? FlowCusum.NeverStarted;
        set => _flow = value.IsNeverStarted ? null : value;
    }

    /// <summary>Restarts one side of the CUSUM after an anomaly opened for it (nothing to restart when never started).</summary>
    public void RestartFlow(bool over) => _flow?.Restart(over);

    /// <summary>A copy of the CUSUM for a fold checkpoint, or null when never started.</summary>
    internal FlowCusum? CloneFlow() => _flow?.Clone();

    /// <summary>Puts a checkpoint's CUSUM back (a copy; null: never started).</summary>
    internal void RestoreFlow(FlowCusum? flow) => _flow = flow?.Clone();
    public RefillCheck Refill { get; set; } = new();
    public BatteryTrend Battery { get; set; } = new();

    /// <summary>Refill safety: what is in the reservoir, ziconotide fills and titration (see <see cref="RefillSafety"/>).</summary>
    public RefillSafety Safety { get; set; } = new();

    /// <summary>Event time at which an anomaly of each kind last opened, so a one-shot finding (a refill) opens once.</summary>
    /// <remarks>Null until the first anomaly: most pumps never have one, and an empty dictionary costs ~100 bytes per active pump.</remarks>
    public Dictionary<string, DateTimeOffset>? LastOpenedAt { get; set; }

    /// <summary>When an anomaly of <paramref name="kind"/> last opened, or null.</summary>
    public DateTimeOffset? LastOpened(string kind) =>
        LastOpenedAt is not null && LastOpenedAt.TryGetValue(kind, out var at) ? at : null;

    /// <summary>Folds a device event; called by <see cref="PumpState.Apply"/> after the state itself was updated.</summary>
    public void Observe(PumpState state, DeviceEvent e, EventEnvelope env)
    {
        ObserveSafety(state, e);
        if (env.ClockSuspect)
        {
            // A refill still happened whatever the clock said; its residuals are not time-based.
            if (e is RefillPerformed suspectRefill)
            {
                Refill.OnRefill(suspectRefill with { At = Refill.LastRefillAt ?? suspectRefill.At }, state.Ledger.DeliveredTotalMl);
            }

            return;
        }

        switch (e)
        {
            case DoseDelivered d:
                Stall.OnDose(d, state);
                break;
            case ReservoirLevelReported { Source: "measured" } x:
                Flow.OnMeasured(x.At, x.VolumeMl, state.Ledger.DeliveredTotalMl, state.Ledger.Refills, state.Ledger.ProgrammedTotalMl);
                Refill.OnMeasured(x.At, x.VolumeMl, state.Ledger.DeliveredTotalMl);
                break;
            case RefillPerformed x:
                Refill.OnRefill(x, state.Ledger.DeliveredTotalMl);
                break;
            case StatusReported { BatteryPct: { } pct } x:
                Battery.OnReport(x.At, pct);
                break;
        }
    }

    // What went into the reservoir and what was prescribed do not depend on the clock: folded for every event.
    private void ObserveSafety(PumpState state, DeviceEvent e)
    {
        switch (e)
        {
            case RefillPerformed x:
                Safety.OnRefill(x, firstRefillOfPump: Refill.Refills == 0);
                break;
            // Applied (the newest): the state keeps an equal copy with shared strings (ValuePool), and no other
            // stored event equals it (a device seq is stored once).
            case PrescriptionSet x when Equals(state.Prescription, x):
                Safety.OnPrescription(x);
                break;
        }
    }

    /// <summary>Folds a platform anomaly event: an opened flow anomaly restarts its CUSUM side.</summary>
    public void Observe(AnomalyDetected x)
    {
        (LastOpenedAt ??= new Dictionary<string, DateTimeOffset>(StringComparer.Ordinal))[x.Kind] = x.At;
        if (x.Kind == AnomalyKinds.OverInfusion)
        {
            RestartFlow(over: true);
        }
        else if (x.Kind == AnomalyKinds.UnderInfusion)
        {
            RestartFlow(over: false);
        }
    }
}
