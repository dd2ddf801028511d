using PumpFleet.Contracts.Events;
using PumpFleet.Contracts.Grains;
using PumpFleet.Domain.Detection;
using PumpFleet.Domain.Pumps;
using PumpFleet.Domain.States;
using PumpFleet.Simulator.Generation;

namespace PumpFleet.DetectionScoring;

/// <summary>A detection as the scoring sees it.</summary>
/// <param name="ReceivedAt">Simulated receive time of the batch after which it was decided.</param>
public sealed record Detection(string Serial, string Kind, string Severity, DateTimeOffset At, string Summary, DateTimeOffset ReceivedAt);

/// <summary>
/// The pure in-memory loop: every simulated batch goes through the same <see cref="IngestPlanner"/>, the same
/// <see cref="PumpState"/> fold and the same <see cref="AnomalyEngine"/> as <c>PumpGrain.IngestAsync</c>, only
/// without the event store round trips. The silent-pump monitor is emulated on the simulated clock: at every
/// batch time, pumps unheard for longer than the window are marked silent, as <c>MarkSilentAsync</c> does.
/// </summary>
public sealed class FleetReplay(AnomalyDetectionOptions options)
{
    private readonly Dictionary<string, PumpState> _pumps = new(StringComparer.Ordinal);
    private readonly List<Detection> _detections = [];
    private DateTimeOffset _lastSilentCheck = DateTimeOffset.MinValue;
    private DateTimeOffset _now;

    public IReadOnlyList<Detection> Detections => _detections;

    public IReadOnlyDictionary<string, PumpState> Pumps => _pumps;

    public long Events { get; private set; }

    /// <summary>Per pump, each batch's receive time and newest event time: when data about a moment first arrived.</summary>
    public Dictionary<string, List<(DateTimeOffset ReceivedAt, DateTimeOffset NewestEvent)>> Arrivals { get; } = new(StringComparer.Ordinal);

    /// <summary>Receive time of the first batch carrying an event after <paramref name="at"/>, or null.</summary>
    public DateTimeOffset? ArrivalOf(string serial, DateTimeOffset at) =>
        Arrivals.TryGetValue(serial, out var list) && list.FirstOrDefault(x => x.NewestEvent > at) is { ReceivedAt: var r } && r != default ? r : null;

    /// <summary>A pump whose flow detector is traced to stderr (debugging aid).</summary>
    public string? Trace { get; init; }

    /// <summary>
    /// Re-evaluates quiet pumps on the simulated clock at every silent check (depletion risk, battery forecast), as
    /// the fleet monitor and the silent pump's reminder do; off, detectors run only when a pump sends (before issue 13).
    /// </summary>
    public bool ReevaluateOnTime { get; init; } = true;

    /// <summary>Folds in arrival order like the fold before issue 13 (the cost baseline).</summary>
    public bool ArrivalOrderBaseline { get; init; }

    /// <summary>When set, every event applied to each pump is kept (to time the fold alone afterwards).</summary>
    public Dictionary<string, List<(PumpEvent Event, EventEnvelope Envelope)>>? Logs { get; init; }

    public void Run(IEnumerable<FleetOutput> outputs)
    {
        foreach (var o in outputs)
        {
            if (o is not PumpBatch b)
            {
                continue;
            }

            if (b.At - _lastSilentCheck >= options.SilentCheckInterval)
            {
                CheckSilent(b.At);
                _lastSilentCheck = b.At;
            }

            Ingest(b);
        }
    }

    private void Ingest(PumpBatch b)
    {
        if (!_pumps.TryGetValue(b.Serial, out var state))
        {
            state = new PumpState { Serial = b.Serial, ArrivalOrderBaseline = ArrivalOrderBaseline };
            _pumps[b.Serial] = state;
            Apply(state, new PumpPaired { At = b.At, HubId = b.HubId, By = "scoring" }, null, b.At, false);
        }

        if (!Arrivals.TryGetValue(b.Serial, out var arrivals))
        {
            Arrivals[b.Serial] = arrivals = [];
        }

        arrivals.Add((b.At, b.Events.Max(e => e.Event.At)));
        _now = b.At;
        var batch = new IngestBatch { HubId = b.HubId, ReceivedAt = b.At, Device = b.Device, Events = [.. b.Events.Select(e => e.Event)] };
        var plan = IngestPlanner.Plan(state, batch, Guid.NewGuid);
        foreach (var p in plan.Events)
        {
            Apply(state, p.Event, p.Seq, p.ReceivedAt, p.ClockSuspect);
        }

        if (state.NeedsRebuild && Logs is not null)
        {
            // As the grain does: a device event older than the window replays the stream.
            state = PumpState.Replay(b.Serial, Logs[b.Serial]);
            _pumps[b.Serial] = state;
            Rebuilds++;
        }

        Events += plan.AcceptedDeviceEvents;
        if (b.Serial == Trace)
        {
            foreach (var p in plan.Events)
            {
                var f = state.Detectors.FlowForReading;
                Console.Error.WriteLine($"{p.Event.At:O} {p.Event.GetType().Name} suspect={p.ClockSuspect} {Describe(p.Event)} | del={state.Ledger.DeliveredTotalMl:0.000} seg={f.SegmentReadings} sm={f.Smoothed:0.000} over={f.Over:0.000} under={f.Under:0.000} sd={f.NoiseSd:0.000} n={f.NoiseCount}");
            }
        }

        if (plan.Events.Count == 0)
        {
            return;
        }

        var decided = AnomalyEngine.Evaluate(state, options);
        Record(state, decided);
        foreach (var e in decided)
        {
            Apply(state, e, null, b.At, false);
        }
    }

    /// <summary>
    /// Tells a pump its cohort flow correction as <c>CohortFlowJob</c> tells the grain (<see cref="PumpDecisions.SetFlowCorrection"/>),
    /// then decides its depletion risk again at its own event time, as the grain does for a pump heard from recently.
    /// Returns false when the pump is unknown or already holds it.
    /// </summary>
    public bool SetFlowCorrection(string serial, PumpFlowCorrection? correction, DateTimeOffset now)
    {
        if (!_pumps.TryGetValue(serial, out var state) || PumpDecisions.SetFlowCorrection(state, correction, now) is not { } e)
        {
            return false;
        }

        Apply(state, e, null, state.LastSeenAt ?? now, false);
        _now = now;
        var decided = AnomalyEngine.EvaluateDepletion(state, options, now);
        Record(state, decided);
        foreach (var d in decided)
        {
            Apply(state, d, null, state.LastSeenAt ?? now, false);
        }

        return true;
    }

    /// <summary>Full replays caused by device events older than the fold window.</summary>
    public int Rebuilds { get; private set; }

    /// <summary>Runs the silent check and the re-evaluation on time at <paramref name="now"/> (used by the silent-depletion scenario).</summary>
    public void Tick(DateTimeOffset now) => CheckSilent(now);

    /// <summary>Ingests one batch (used by the synthetic scenarios).</summary>
    public void Send(PumpBatch b) => Ingest(b);

    private void CheckSilent(DateTimeOffset now)
    {
        if (ReevaluateOnTime)
        {
            foreach (var state in _pumps.Values)
            {
                if (state.LastSeenAt is { } quietSince && now - quietSince >= options.ReevaluateAfter)
                {
                    var decided = AnomalyEngine.Reevaluate(state, options, now);
                    _now = now;
                    Record(state, decided);
                    foreach (var e in decided)
                    {
                        Apply(state, e, null, quietSince, false);
                    }
                }
            }
        }

        foreach (var state in _pumps.Values)
        {
            if (state.LastSeenAt is { } seen && now - seen > options.SilentWindow
                && !state.Anomalies.Values.Any(a => a.Kind == AnomalyKinds.Silent) && !TherapyPhases.IsExplanted(state.Phase))
            {
                var e = new AnomalyDetected
                {
                    At = now,
                    AnomalyId = AnomalyEngine.AnomalyId(state.Serial, AnomalyKinds.Silent, state.Version),
                    Kind = AnomalyKinds.Silent,
                    Severity = "warning",
                    Summary = "silent",
                    Evidence = new Dictionary<string, double> { ["lastSeenAtUnixSeconds"] = seen.ToUnixTimeSeconds() },
                };
                _now = now;
                Record(state, [e]);
                Apply(state, e, null, now, false);
            }
        }
    }

    private void Record(PumpState state, IReadOnlyList<PumpEvent> decided)
    {
        // An escalation (a more severe finding superseding an open one) counts too: it is a new finding.
        foreach (var e in decided.OfType<AnomalyDetected>())
        {
            _detections.Add(new Detection(state.Serial, e.Kind, e.Severity, e.At, e.Summary, e.RaisedAt ?? _now));
        }
    }

    private static string Describe(PumpEvent e) => e switch
    {
        ReservoirLevelReported x => $"level {x.VolumeMl} {x.Source}",
        DoseDelivered x => $"dose {x.VolumeMl} {x.Kind} from {x.From:O}",
        RefillPerformed x => $"refill exp {x.ExpectedResidualMl} asp {x.AspiratedResidualMl} add {x.AddedMl}",
        DeliveryStateChanged x => $"state {x.State} {x.Reason}",
        PrescriptionSet x => $"rx {x.Mode} {x.RateMlPerDay}",
        _ => "",
    };

    private void Apply(PumpState state, PumpEvent e, long? seq, DateTimeOffset receivedAt, bool suspect)
    {
        var env = new EventEnvelope(state.Version + 1, seq, receivedAt, suspect);
        state.Apply(e, env);
        if (Logs is not null)
        {
            if (!Logs.TryGetValue(state.Serial, out var log))
            {
                Logs[state.Serial] = log = [];
            }

            log.Add((e, env));
        }
    }
}
