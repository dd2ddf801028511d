using PumpFleet.Contracts.Events;
using PumpFleet.Domain.Detection;
using PumpFleet.Domain.Drugs;
using PumpFleet.Domain.States;

namespace PumpFleet.Domain.Pumps;

/// <summary>
/// The decisions a pump grain takes on a command, as pure functions of the state and <c>now</c>: whether the command
/// changes anything and, if so, the one event to append (severity and summary included). The grain supplies the time,
/// appends what is decided and folds it; these functions do no I/O and read no clock.
/// </summary>
public static class PumpDecisions
{
    /// <summary>
    /// How far the caller's <c>lastSeenAt</c> may trail the state's: the read model's value went through PostgreSQL
    /// (microseconds) and a projection, so within a second it is the same message.
    /// </summary>
    public static readonly TimeSpan SilentTolerance = TimeSpan.FromSeconds(1);

    /// <summary>Pairs the pump with a hub; null when it is already paired with that hub.</summary>
    public static PumpPaired? Pair(PumpState state, string hubId, string? by, DateTimeOffset now)
    {
        ArgumentNullException.ThrowIfNull(state);
        return string.Equals(state.HubId, hubId, StringComparison.Ordinal)
            ? null
            : new PumpPaired { At = now, HubId = hubId, By = by };
    }

    /// <summary>Acknowledges an open anomaly; null when there is no such anomaly or it is not open.</summary>
    public static AnomalyAcknowledged? Acknowledge(PumpState state, string anomalyId, string by, string? note, DateTimeOffset now)
    {
        ArgumentNullException.ThrowIfNull(state);
        return state.TryGetAnomaly(anomalyId, out var a) && a.Status == AnomalyStatus.Open
            ? new AnomalyAcknowledged { At = now, AnomalyId = anomalyId, By = by, Note = note }
            : null;
    }

    /// <summary>Resolves an open or acknowledged anomaly; null when there is no such anomaly.</summary>
    public static AnomalyResolved? Resolve(PumpState state, string anomalyId, string by, string? note, DateTimeOffset now)
    {
        ArgumentNullException.ThrowIfNull(state);
        return state.TryGetAnomaly(anomalyId, out _)
            ? new AnomalyResolved { At = now, AnomalyId = anomalyId, By = by, Note = note }
            : null;
    }

    /// <summary>
    /// Sets or clears the pump's cohort flow correction (<c>flow-correction.changed</c>); null when it already holds
    /// exactly this one (or none when clearing), when the pump has no events (a serial the platform never heard from
    /// gets no stream from a fleet job), or when an explanted pump would take a new one.
    /// </summary>
    /// <exception cref="ArgumentException">The correction's cohort is not a cohort-flow stream, or its factor is unusable.</exception>
    public static FlowCorrectionChanged? SetFlowCorrection(PumpState state, Contracts.Grains.PumpFlowCorrection? correction, DateTimeOffset now)
    {
        ArgumentNullException.ThrowIfNull(state);
        if (correction is not null)
        {
            if (string.IsNullOrWhiteSpace(correction.AnomalyId) || Detection.CohortFlow.CohortKey.FromStreamId(correction.Cohort) is null)
            {
                throw new ArgumentException($"'{correction.Cohort}' is not a cohort flow stream (cohort-flow:{{lot|model|firmware}}:{{value}}), or the anomaly id is empty.", nameof(correction));
            }

            if (!Detection.CohortFlow.CohortFlowCorrection.IsUsableFactor(correction.Factor))
            {
                throw new ArgumentException($"Flow factor {correction.Factor} is outside 0.2–5.", nameof(correction));
            }
        }

        var held = state.FlowCorrection;
        if (state.Version == 0)
        {
            return null;
        }

        if (correction is null)
        {
            return held is null ? null : new FlowCorrectionChanged { At = now };
        }

        if ((held is not null && held.AnomalyId == correction.AnomalyId && held.Cohort == correction.Cohort
             && held.Factor.Equals(correction.Factor) && held.Since == correction.Since)
            || (held is null && TherapyPhases.IsExplanted(state.Phase)))
        {
            return null;
        }

        return new FlowCorrectionChanged
        {
            At = now, AnomalyId = correction.AnomalyId, Cohort = correction.Cohort, Factor = correction.Factor, Since = correction.Since,
        };
    }

    /// <summary>
    /// Opens a <c>silent</c> anomaly for a pump the fleet monitor found silent since <paramref name="lastSeenAt"/>;
    /// null when the pump has no events, already has one open, has been heard from since, or is explanted. The one
    /// detector on wall time: silence is about the platform not hearing, not about event time.
    /// </summary>
    public static AnomalyDetected? MarkSilent(PumpState state, DateTimeOffset lastSeenAt, TimeSpan window, DateTimeOffset now)
    {
        ArgumentNullException.ThrowIfNull(state);
        if (state.Version == 0 || state.AnomalyOfKind(AnomalyKinds.Silent) is not null
            || state.LastSeenAt - lastSeenAt > SilentTolerance || TherapyPhases.IsExplanted(state.Phase))
        {
            return null;
        }

        var seen = state.LastSeenAt ?? lastSeenAt;
        return new AnomalyDetected
        {
            At = now,
            RaisedAt = now,
            AnomalyId = AnomalyEngine.AnomalyId(state.Serial, AnomalyKinds.Silent, state.Version),
            Kind = AnomalyKinds.Silent,
            Severity = SilentSeverity(state).ToWire(),
            Summary = $"No data from pump {state.Serial} (hub {state.HubId}) for {(now - seen).TotalHours:0.#} h, longer than the {window.TotalHours:0.#} h window.",
            Evidence = new Dictionary<string, double>(StringComparer.Ordinal)
            {
                ["lastSeenAtUnixSeconds"] = seen.ToUnixTimeSeconds(),
                ["silentHours"] = Math.Round((now - seen).TotalHours, 2),
                ["windowHours"] = window.TotalHours,
            },
        };
    }

    // Baclofen withdrawal progresses within 24–72 h (docs/detection.md), so silence on baclofen is critical.
    private static AnomalySeverity SilentSeverity(PumpState state) =>
        DrugName.IsWithdrawalCritical(state.Prescription?.Drug) ? AnomalySeverity.Critical : AnomalySeverity.Warning;
}
