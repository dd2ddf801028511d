using System.Collections.Frozen;

namespace PumpFleet.Contracts;

/// <summary>The closed vocabularies of hub protocol v1 (docs/protocol.md) and the platform's own kinds.</summary>
public static class Vocabulary
{
    /// <summary>Therapy phases.</summary>
    public static readonly FrozenSet<string> Phases = FrozenSet.Create(StringComparer.Ordinal,
        "trial-single-dose", "trial-multi-dose", "trial-continuous", "implanted", "explanted");

    /// <summary>Indications.</summary>
    public static readonly FrozenSet<string> Indications = FrozenSet.Create(StringComparer.Ordinal,
        "cancer-pain", "chronic-back-pain", "neck-pain", "failed-back-surgery", "crps", "postherpetic-neuralgia",
        "neuropathy", "spasticity", "other");

    /// <summary>Prescription modes.</summary>
    public static readonly FrozenSet<string> PrescriptionModes = FrozenSet.Create(StringComparer.Ordinal, "continuous", "flex");

    /// <summary>Kinds of delivered dose.</summary>
    public static readonly FrozenSet<string> DoseKinds = FrozenSet.Create(StringComparer.Ordinal,
        "basal", "periodic", "patient-bolus", "priming", "bridging");

    /// <summary>Reasons a bolus request was refused.</summary>
    public static readonly FrozenSet<string> BolusRefusals = FrozenSet.Create(StringComparer.Ordinal, "lockout", "daily-limit");

    /// <summary>Sources of a reservoir reading.</summary>
    public static readonly FrozenSet<string> LevelSources = FrozenSet.Create(StringComparer.Ordinal, "measured", "estimated");

    /// <summary>Delivery states.</summary>
    public static readonly FrozenSet<string> DeliveryStates = FrozenSet.Create(StringComparer.Ordinal, "running", "stopped");

    /// <summary>Reasons delivery stopped.</summary>
    public static readonly FrozenSet<string> StopReasons = FrozenSet.Create(StringComparer.Ordinal,
        "programming", "mri", "clinician", "stall", "end-of-service");

    /// <summary>Pump alarm codes.</summary>
    public static readonly FrozenSet<string> AlarmCodes = FrozenSet.Create(StringComparer.Ordinal,
        "LOW_RESERVOIR", "CRITICAL_LOW_RESERVOIR", "MOTOR_STALL", "ELECTIVE_REPLACEMENT", "END_OF_SERVICE",
        "LOW_BATTERY_RESET", "PUMP_MEMORY_ERROR", "CATHETER_OCCLUSION", "OTHER");

    /// <summary>Pump alarm severities.</summary>
    public static readonly FrozenSet<string> AlarmSeverities = FrozenSet.Create(StringComparer.Ordinal, "critical", "non-critical");

    /// <summary>Motor states in <c>status</c>.</summary>
    public static readonly FrozenSet<string> MotorStates = FrozenSet.Create(StringComparer.Ordinal, "running", "stopped", "stalled");

    /// <summary>Reasons in <c>events.lost</c>.</summary>
    public static readonly FrozenSet<string> LossReasons = FrozenSet.Create(StringComparer.Ordinal, "hub-buffer-overflow", "pump-memory-reset", "other");

    /// <summary>Platform-detected anomaly kinds (protocol.md §2).</summary>
    public static readonly FrozenSet<string> AnomalyKinds = FrozenSet.Create(StringComparer.Ordinal,
        "flow-stall", "under-infusion", "over-infusion", "refill-discrepancy", "depletion-risk", "silent",
        "battery-end-of-life", "cohort-signal", "refill-mismatch", "dose-above-limit", "cohort-flow-deviation");

    /// <summary>Kinds of screening trial of a therapy (platform extension, docs/api.md).</summary>
    public static readonly FrozenSet<string> TrialKinds = FrozenSet.Create(StringComparer.Ordinal, "single-dose", "multi-dose", "continuous");

    /// <summary>
    /// Reasons a pump was explanted (platform extension, docs/api.md). <c>replacement</c> is only recorded together
    /// with the new pump's implant; every other reason ends the therapy.
    /// </summary>
    public static readonly FrozenSet<string> ExplantReasons = FrozenSet.Create(StringComparer.Ordinal,
        "replacement", "end-of-service", "malfunction", "infection", "therapy-ended", "inadequate-response",
        "patient-request", "death", "other");

    /// <summary>Anomaly severities.</summary>
    public static readonly FrozenSet<string> AnomalySeverities = FrozenSet.Create(StringComparer.Ordinal, "critical", "warning", "info");
}
