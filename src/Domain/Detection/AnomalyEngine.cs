using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using PumpFleet.Contracts.Events;
using PumpFleet.Domain.Pumps;
using PumpFleet.Domain.States;

namespace PumpFleet.Domain.Detection;

/// <summary>
/// Decides, as a pure function of a pump's state after a batch, which anomalies to open and which to resolve.
/// One open anomaly per pump and kind: a finding for a kind already open adds nothing, unless it is more severe,
/// in which case the open one is resolved (superseded) and a new one opened. Ids are deterministic
/// (<c>{serial}:{kind}:{version}</c>), and so are the event ids, so a replayed decision is stored once.
/// </summary>
public static class AnomalyEngine
{
    /// <summary>Who resolves automatically.</summary>
    public const string SystemActor = "system";

    /// <summary>The anomalies to open and resolve; empty when nothing changes.</summary>
    public static IReadOnlyList<PumpEvent> Evaluate(PumpState state, AnomalyDetectionOptions options)
    {
        ArgumentNullException.ThrowIfNull(state);
        ArgumentNullException.ThrowIfNull(options);
        if (state.Version == 0)
        {
            return [];
        }

        var at = state.LastEventAt ?? state.LastSeenAt ?? DateTimeOffset.UnixEpoch;

        // Seqs missing (a batch or a refill still in transit): the detectors that compare consecutive readings, whole
        // refill cycles, or a refill with its prescription wait for the fold to be complete, for a while; the re-fold
        // then decides on all the data, and the finding is dated at the event time of its evidence, as in order.
        var incomplete = state.AwaitsRecentData(at, options.IncompleteDataWait);
        Verdict[] verdicts =
        [
            Detectors.FlowStall(state, at),
            incomplete ? Verdict.None(AnomalyKinds.OverInfusion) : Detectors.Flow(state, options, over: true),
            incomplete ? Verdict.None(AnomalyKinds.UnderInfusion) : Detectors.Flow(state, options, over: false),
            incomplete ? Verdict.None(AnomalyKinds.RefillDiscrepancy) : Detectors.RefillDiscrepancy(state, options),
            Detectors.DepletionRisk(state, options, at),
            Detectors.BatteryEndOfLife(state, options),
            Detectors.SilentCleared(state),
            incomplete ? Verdict.None(AnomalyKinds.RefillMismatch) : RefillSafetyDetectors.RefillMismatch(state),
            incomplete ? Verdict.None(AnomalyKinds.DoseAboveLimit) : RefillSafetyDetectors.DoseAboveLimit(state),
        ];
        var events = new List<PumpEvent>();
        var raisedAt = state.LastSeenAt ?? at;
        foreach (var v in verdicts)
        {
            Decide(state, v, at, raisedAt, events);
        }

        return events;
    }

    /// <summary>
    /// Re-evaluates the detectors that depend on time passing rather than on data (depletion risk, battery
    /// forecast) at <paramref name="now"/>, for a pump that has sent nothing since its last evaluation: silence is
    /// not health. Never before the state's own event time. Decisions as <see cref="Evaluate"/>, stamped at <paramref name="now"/>.
    /// </summary>
    public static IReadOnlyList<PumpEvent> Reevaluate(PumpState state, AnomalyDetectionOptions options, DateTimeOffset now)
    {
        ArgumentNullException.ThrowIfNull(state);
        ArgumentNullException.ThrowIfNull(options);
        if (state.Version == 0)
        {
            return [];
        }

        var at = state.LastEventAt is { } last && last > now ? last : now;
        var events = new List<PumpEvent>();
        Decide(state, Detectors.DepletionRisk(state, options, at), at, now, events);
        Decide(state, Detectors.BatteryEndOfLife(state, options, at), at, now, events);
        return events;
    }

    /// <summary>
    /// Re-decides <c>depletion-risk</c> alone at the state's own event time, after an input of its forecast changed
    /// without new data (a cohort flow correction set or cleared). <paramref name="raisedAt"/>: when the platform
    /// decided (the wall clock: the correction, not the pump's data, is what is new).
    /// </summary>
    public static IReadOnlyList<PumpEvent> EvaluateDepletion(PumpState state, AnomalyDetectionOptions options, DateTimeOffset raisedAt)
    {
        ArgumentNullException.ThrowIfNull(state);
        ArgumentNullException.ThrowIfNull(options);
        if (state.Version == 0)
        {
            return [];
        }

        var at = state.LastEventAt ?? state.LastSeenAt ?? DateTimeOffset.UnixEpoch;
        var events = new List<PumpEvent>();
        Decide(state, Detectors.DepletionRisk(state, options, at), at, raisedAt, events);
        return events;
    }

    /// <summary>
    /// Appends the open/resolve events one verdict calls for. An opened anomaly is stamped with the event time at which
    /// the data showed the condition (the finding's evidence time, never later than <paramref name="at"/>), so a
    /// refill that arrives a day late is dated at the refill, as in order; <paramref name="raisedAt"/> (the receive
    /// time of the data decided on) says when the platform could know. Resolutions are stamped <paramref name="at"/>.
    /// </summary>
    public static void Decide(PumpState state, Verdict verdict, DateTimeOffset at, DateTimeOffset raisedAt, List<PumpEvent> events)
    {
        ArgumentNullException.ThrowIfNull(state);
        ArgumentNullException.ThrowIfNull(verdict);
        ArgumentNullException.ThrowIfNull(events);
        var open = state.AnomalyOfKind(verdict.Kind);
        if (verdict.Finding is { } f)
        {
            if (open is not null && Rank(f.Severity) <= Rank(open.Severity))
            {
                return;
            }

            if (open is not null)
            {
                events.Add(Resolved(open.Id, at, $"superseded by a {f.Severity} {verdict.Kind} anomaly"));
            }

            events.Add(new AnomalyDetected
            {
                At = f.EvidenceAt is { } e && e < at ? e : at,
                AnomalyId = AnomalyId(state.Serial, verdict.Kind, state.Version),
                Kind = verdict.Kind,
                Severity = f.Severity,
                Summary = f.Summary,
                Evidence = f.Evidence,
                RaisedAt = raisedAt,
            });
        }
        else if (verdict.Cleared && open is not null)
        {
            events.Add(Resolved(open.Id, at, "condition cleared"));
        }
    }

    /// <summary>The id of an anomaly opened at a stream version.</summary>
    public static string AnomalyId(string serial, string kind, long version) =>
        string.Create(CultureInfo.InvariantCulture, $"{serial}:{kind}:{version}");

    /// <summary>Idempotency key of an anomaly event: a name-based UUID of the anomaly id and the transition.</summary>
    public static Guid EventId(PumpEvent e)
    {
        var name = e switch
        {
            AnomalyDetected x => $"pumpfleet/anomaly/{x.AnomalyId}/detected",
            AnomalyResolved x => $"pumpfleet/anomaly/{x.AnomalyId}/resolved",
            _ => throw new ArgumentException($"Not a detector event: {e.GetType().Name}", nameof(e)),
        };
        Span<byte> hash = stackalloc byte[32];
        SHA256.HashData(Encoding.UTF8.GetBytes(name), hash);
        hash[6] = (byte)((hash[6] & 0x0F) | 0x50);
        hash[8] = (byte)((hash[8] & 0x3F) | 0x80);
        return new Guid(hash[..16], bigEndian: true);
    }

    /// <summary>An automatic resolution.</summary>
    public static AnomalyResolved Resolved(string anomalyId, DateTimeOffset at, string note) =>
        new() { At = at, AnomalyId = anomalyId, By = SystemActor, Note = note, Automatic = true };

    /// <summary>Severity order: info &lt; warning &lt; critical.</summary>
    public static int Rank(string severity) => (int)AnomalySeverities.Parse(severity);
}
