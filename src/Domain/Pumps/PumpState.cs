using System.Text.Json.Serialization;
using PumpFleet.Contracts.Events;
using PumpFleet.Contracts.Views;
using PumpFleet.Domain.Detection;
using PumpFleet.Domain.Detection.CohortFlow;
using PumpFleet.Domain.States;

namespace PumpFleet.Domain.Pumps;

/// <summary>Where an event came from and when it arrived: the stored envelope, beside the payload.</summary>
/// <param name="Version">Stream version of the event.</param>
/// <param name="Seq">Device seq, or null for platform events.</param>
/// <param name="ReceivedAt">Platform receive time.</param>
/// <param name="ClockSuspect">The event's <c>at</c> is not trusted; time-based folds skip it.</param>
public readonly record struct EventEnvelope(long Version, long? Seq, DateTimeOffset ReceivedAt, bool ClockSuspect);

/// <summary>
/// A pump's state as a pure, deterministic fold over its events: no I/O, no wall clock. Device events fold in seq
/// order whatever order they arrive in (while seqs are missing, a late one re-folds a window, <see cref="FoldWindow"/>), so a
/// replay, a rebuild, a snapshot + tail, a reordered delivery and an accelerated simulation agree. Mutable for speed
/// and memory (one instance per active pump); serialisable as a snapshot with System.Text.Json.
/// </summary>
public sealed class PumpState
{
    /// <summary>Bumped whenever the fold changes so that old snapshots are ignored and the stream is replayed.</summary>
    public const int SchemaVersion = 5;

    /// <summary>Default low-reservoir threshold when the prescription sets none (older SynchroMed labelling: 2 mL; §0 item 4).</summary>
    public const double DefaultLowReservoirMl = 2.0;

    public string Serial { get; set; } = "";

    // The few distinct values every pump of a fleet repeats are shared (ValuePool): the setters cover the fold, a
    // replay and a snapshot read alike.
    public string? HubId { get; set => field = ValuePool.Share(value); }
    public DeviceInfo? Device { get; set => field = ValuePool.Share(value); }
    public string? Phase { get; set => field = ValuePool.Share(value); }
    public string? Indication { get; set => field = ValuePool.Share(value); }
    public PrescriptionSet? Prescription { get; set => field = ValuePool.Share(value); }
    public string? DeliveryState { get; set => field = ValuePool.Share(value); }
    public string? StopReason { get; set => field = ValuePool.Share(value); }
    public string? Motor { get; set => field = ValuePool.Share(value); }
    public double? BatteryPct { get => _batteryPct; set => _batteryPct = value; }

    private OptionalDouble _batteryPct;
    public double? BatteryV { get => _batteryV; set => _batteryV = value; }

    private OptionalDouble _batteryV;
    public double? TempC { get => _tempC; set => _tempC = value; }

    private OptionalDouble _tempC;
    public int? LastPainScore { get; set; }

    // The three dictionaries below are empty for almost every pump (no alarm ever, no open anomaly), and an empty
    // Dictionary costs 80 bytes: they are allocated at their first entry (issue 15, memory per active pump). The public
    // properties allocate on first use, for callers that change them; the fold, the detectors and the views read through
    // the members below that do not allocate. Snapshots keep their shape: an absent dictionary is written as {}.
    private Dictionary<string, ActiveAlarm>? _activeAlarms;
    private Dictionary<string, DateTimeOffset>? _alarmChangedAt;
    private Dictionary<string, AnomalyRecord>? _anomalies;

    /// <summary>Active device alarms by code (allocated on first use: see <see cref="HasActiveAlarms"/>, <see cref="TryGetAlarm"/>).</summary>
    [JsonIgnore]
    public Dictionary<string, ActiveAlarm> ActiveAlarms
    {
        get => _activeAlarms ??= new(StringComparer.Ordinal);
        set => _activeAlarms = value;
    }

    [JsonInclude]
    [JsonPropertyName("activeAlarms")]
    private Dictionary<string, ActiveAlarm> ActiveAlarmsJson
    {
        get => _activeAlarms ?? EmptyJson<ActiveAlarm>.Instance;
        set => _activeAlarms = NullWhenEmpty(value);
    }

    /// <summary>Event time of the last change per alarm code, so a late-arriving older raise cannot undo a newer clear.</summary>
    [JsonIgnore]
    public Dictionary<string, DateTimeOffset> AlarmChangedAt
    {
        get => _alarmChangedAt ??= new(StringComparer.Ordinal);
        set => _alarmChangedAt = value;
    }

    [JsonInclude]
    [JsonPropertyName("alarmChangedAt")]
    private Dictionary<string, DateTimeOffset> AlarmChangedAtJson
    {
        get => _alarmChangedAt ?? EmptyJson<DateTimeOffset>.Instance;
        set => _alarmChangedAt = NullWhenEmpty(value);
    }

    /// <summary>Highest device seq stored.</summary>
    public long LastSeq { get; set; }

    /// <summary>Event time of the event with the highest seq whose clock was trusted (the "previous event" of the clock rule).</summary>
    public DateTimeOffset? LastDeviceAt { get => _lastDeviceAt; set => _lastDeviceAt = value; }

    private OptionalTime _lastDeviceAt;

    /// <summary>Latest trusted event time seen.</summary>
    public DateTimeOffset? LastEventAt { get => _lastEventAt; set => _lastEventAt = value; }

    private OptionalTime _lastEventAt;

    /// <summary>Latest receive time.</summary>
    public DateTimeOffset? LastSeenAt { get => _lastSeenAt; set => _lastSeenAt = value; }

    private OptionalTime _lastSeenAt;

    /// <summary>Stream version (number of events applied).</summary>
    public long Version { get; set; }

    /// <summary>
    /// The latest event time of any event applied other than identity (a clock-suspect device event at its receive
    /// time, as the as-of fold counts it). See <see cref="SnapshotCoversUntil"/>.
    /// </summary>
    public DateTimeOffset? CoversUntil { get => _coversUntil; set => _coversUntil = value; }

    private OptionalTime _coversUntil;

    /// <summary>Latest time of the identity events (<c>device.identified</c>, <c>pump.paired</c>) applied since the last other event.</summary>
    public DateTimeOffset? TrailingIdentityAt { get => _trailingIdentityAt; set => _trailingIdentityAt = value; }

    private OptionalTime _trailingIdentityAt;

    /// <summary>
    /// A snapshot of this state is exactly what the as-of fold reaches at this version for any time at or after this
    /// one (the kept snapshots of ISnapshotStore). Identity events count only when nothing followed them: the as-of fold applies an
    /// identity event from after the time just before the next event it includes (pairing happens on the wall clock,
    /// a backlog is older), so only a trailing one can make the two differ.
    /// </summary>
    [JsonIgnore]
    public DateTimeOffset? SnapshotCoversUntil =>
        TrailingIdentityAt is { } t && (CoversUntil is null || t > CoversUntil) ? t : CoversUntil;

    /// <summary>Which seqs are stored, missing, rejected or lost: the gaps and the acknowledged watermark.</summary>
    public SeqLedger Seqs { get; set; } = new();

    /// <summary>Event time of the latest phase / prescription / delivery-state / status change (late older events do not override).</summary>
    public DateTimeOffset? PhaseAt { get => _phaseAt; set => _phaseAt = value; }

    private OptionalTime _phaseAt;
    public DateTimeOffset? PrescriptionAt { get => _prescriptionAt; set => _prescriptionAt = value; }

    private OptionalTime _prescriptionAt;
    public DateTimeOffset? DeliveryStateAt { get => _deliveryStateAt; set => _deliveryStateAt = value; }

    private OptionalTime _deliveryStateAt;
    public DateTimeOffset? StatusAt { get => _statusAt; set => _statusAt = value; }

    private OptionalTime _statusAt;

    /// <summary>The platform's own reservoir ledger.</summary>
    public ReservoirLedger Ledger { get; set; } = new();

    /// <summary>Anomalies not yet resolved, by id (allocated on first use: see <see cref="AnomalyOfKind"/>, <see cref="AnomalyRecords"/>).</summary>
    [JsonIgnore]
    public Dictionary<string, AnomalyRecord> Anomalies
    {
        get => _anomalies ??= new(StringComparer.Ordinal);
        set => _anomalies = value;
    }

    [JsonInclude]
    [JsonPropertyName("anomalies")]
    private Dictionary<string, AnomalyRecord> AnomaliesJson
    {
        get => _anomalies ?? EmptyJson<AnomalyRecord>.Instance;
        set => _anomalies = NullWhenEmpty(value);
    }

    /// <summary>Whether any device alarm is active (does not allocate).</summary>
    [JsonIgnore]
    public bool HasActiveAlarms => _activeAlarms is { Count: > 0 };

    /// <summary>The active alarm of <paramref name="code"/>, if any (does not allocate).</summary>
    public bool TryGetAlarm(string code, out ActiveAlarm alarm)
    {
        if (_activeAlarms is not null && _activeAlarms.TryGetValue(code, out var a))
        {
            alarm = a;
            return true;
        }

        alarm = null!;
        return false;
    }

    /// <summary>The unresolved anomalies (does not allocate when there are none).</summary>
    [JsonIgnore]
    public IEnumerable<AnomalyRecord> AnomalyRecords => _anomalies is { Count: > 0 } a ? a.Values : [];

    /// <summary>The unresolved anomaly of <paramref name="kind"/> (at most one is open per kind), or null.</summary>
    public AnomalyRecord? AnomalyOfKind(string kind)
    {
        if (_anomalies is null)
        {
            return null;
        }

        foreach (var a in _anomalies.Values)
        {
            if (a.Kind == kind)
            {
                return a;
            }
        }

        return null;
    }

    /// <summary>The unresolved anomaly <paramref name="anomalyId"/>, if any (does not allocate).</summary>
    public bool TryGetAnomaly(string anomalyId, [System.Diagnostics.CodeAnalysis.NotNullWhen(true)] out AnomalyRecord? anomaly)
    {
        anomaly = null;
        return _anomalies is not null && _anomalies.TryGetValue(anomalyId, out anomaly);
    }

    // The fold checkpoints copy the dictionaries as they are, absent ones included.
    internal Dictionary<string, ActiveAlarm>? ActiveAlarmsOrNull => _activeAlarms;
    internal Dictionary<string, DateTimeOffset>? AlarmChangedAtOrNull => _alarmChangedAt;

    internal void RestoreAlarms(Dictionary<string, ActiveAlarm>? alarms, Dictionary<string, DateTimeOffset>? changedAt) =>
        (_activeAlarms, _alarmChangedAt) = (alarms, changedAt);

    private static Dictionary<string, TValue>? NullWhenEmpty<TValue>(Dictionary<string, TValue>? d) => d is { Count: > 0 } ? d : null;

    // What a snapshot writes for an absent dictionary: {} as before. Only the serializer reads it, so it stays empty.
    private static class EmptyJson<TValue>
    {
        public static readonly Dictionary<string, TValue> Instance = new(StringComparer.Ordinal);
    }

    /// <summary>The anomaly detectors' accumulators (folded here so that a replay rebuilds them exactly).</summary>
    public DetectorState Detectors { get; set; } = new();

    /// <summary>
    /// While seqs are missing (gaps), the device events since the oldest gap and checkpoints of the fold, so that a
    /// late event is folded in seq order; null when nothing is missing (a late event is then impossible: a seq not in
    /// a gap is already stored), so a pump without gaps pays nothing for it.
    /// </summary>
    public FoldWindow? Window { get; set; }

    // Events a new window keeps; unlimited during a full replay.
    private int _windowLimit = FoldWindow.DefaultMaxEvents;

    /// <summary>
    /// A device event arrived from before the window (<see cref="FoldWindow"/>): it was folded out of order, and the
    /// owner must replace this state with a full <see cref="Replay"/> of the stream. Not persisted: the owner does so
    /// before anything reads or saves the state.
    /// </summary>
    [JsonIgnore]
    public bool NeedsRebuild { get; set; }

    /// <summary>
    /// Folds a whole stream in stored order without a window limit (every late event re-folds in seq order), then
    /// trims the window: the state that seq order gives, whatever the arrival order was.
    /// </summary>
    public static PumpState Replay(string serial, IEnumerable<(PumpEvent Event, EventEnvelope Envelope)> stream)
    {
        ArgumentNullException.ThrowIfNull(stream);
        var s = StartReplay(serial);
        foreach (var (e, env) in stream)
        {
            s.Apply(e, env);
        }

        s.FinishReplay();
        return s;
    }

    /// <summary>An empty state whose window keeps every event, for a full replay (apply the stream, then <see cref="FinishReplay"/>).</summary>
    public static PumpState StartReplay(string serial)
    {
        return new PumpState { Serial = serial, _windowLimit = int.MaxValue };
    }

    /// <summary>
    /// Lets a state loaded from a snapshot fold a tail like a full replay (the window keeps every event; end with
    /// <see cref="FinishReplay"/>). Events it already dropped from its window cannot come back: a late event from
    /// before the window still sets <see cref="NeedsRebuild"/>.
    /// </summary>
    public void ContinueAsReplay()
    {
        _windowLimit = int.MaxValue;
        if (Window is { } w)
        {
            w.MaxEvents = _windowLimit;
        }
    }

    /// <summary>Ends a full replay: the window goes back to its bounded size.</summary>
    public void FinishReplay()
    {
        _windowLimit = FoldWindow.DefaultMaxEvents;
        if (Window is { } w)
        {
            w.MaxEvents = _windowLimit;
            w.Trim();
        }

        NeedsRebuild = false;
    }

    /// <summary>Applies one stored event.</summary>
    public void Apply(PumpEvent e, EventEnvelope env)
    {
        Version = env.Version;
        if (LastSeenAt is null || env.ReceivedAt > LastSeenAt)
        {
            LastSeenAt = env.ReceivedAt;
        }

        var effectiveAt = PumpAsOf.EffectiveAt(e, env);
        if (e is DeviceIdentified or PumpPaired)
        {
            if (TrailingIdentityAt is null || effectiveAt > TrailingIdentityAt)
            {
                TrailingIdentityAt = effectiveAt;
            }
        }
        else
        {
            TrailingIdentityAt = null;
            if (CoversUntil is null || effectiveAt > CoversUntil)
            {
                CoversUntil = effectiveAt;
            }
        }

        if (e is DeviceEvent d)
        {
            ApplyDevice(d, env);
            return;
        }

        switch (e)
        {
            case DeviceIdentified x:
                Device = x.Device;
                break;
            case PumpPaired x:
                HubId = x.HubId;
                break;
            case GapRecorded x:
                if (Window is null && !ArrivalOrderBaseline)
                {
                    // Seqs go missing: from here on a late event may arrive, so keep what re-folding it needs. The
                    // gap is recorded before the event beyond it is folded, so this checkpoint is right below the gap.
                    Window = new FoldWindow { MaxEvents = _windowLimit };
                    Window.Checkpoints.Add(FoldCheckpoint.Capture(this, LastSeq));
                }

                Window?.RecentGaps.Add(new RecentGap(x.FromSeq, x.ToSeq, x.At, env.ReceivedAt));
                Seqs.MarkMissing(x.ToSeq);
                break;
            case SeqsRejected x:
                foreach (var r in x.Rejected)
                {
                    Seqs.MarkRejected(r.Seq);
                }

                DropWindowWhenNothingMissing();
                break;
            case AnomalyDetected x:
                Anomalies[x.AnomalyId] = new AnomalyRecord
                {
                    Id = x.AnomalyId, Kind = x.Kind, Severity = x.Severity, Status = AnomalyStatus.Open, DetectedAt = x.At,
                    Summary = x.Summary, Evidence = new Dictionary<string, double>(x.Evidence, StringComparer.Ordinal),
                    RaisedAt = x.RaisedAt,
                };
                Detectors.Observe(x);
                if (x.Kind is AnomalyKinds.OverInfusion or AnomalyKinds.UnderInfusion && Window is not null)
                {
                    Window.Restarts.Add(new FlowRestartMark(LastSeq, x.Kind == AnomalyKinds.OverInfusion));
                }

                break;
            case AnomalyAcknowledged x when TryGetAnomaly(x.AnomalyId, out var a):
                a.Status = AnomalyStatus.Acknowledged;
                a.AcknowledgedBy = x.By;
                a.AcknowledgedAt = x.At;
                break;
            case AnomalyResolved x:
                _anomalies?.Remove(x.AnomalyId);
                break;
            case FlowCorrectionChanged x:
                FlowCorrection = x.AnomalyId is { } id && x.Cohort is { } cohort && x.Factor is { } factor
                    ? new AppliedFlowCorrection { AnomalyId = id, Cohort = cohort, Factor = factor, Since = x.Since ?? x.At }
                    : null;
                break;
        }
    }

    /// <summary>
    /// Benchmark baseline only: folds device events in arrival order, as schema 3 did (no window, no re-fold), so
    /// DetectionScoring can measure the order-independent fold against it in the same run.
    /// </summary>
    [JsonIgnore]
    internal bool ArrivalOrderBaseline { get; set; }

    private void ApplyDevice(DeviceEvent d, EventEnvelope env)
    {
        var seq = d.Seq;
        if (d is EventsLost lost)
        {
            // Declared gone for good: those seqs will never arrive, so they no longer hold the window open.
            Seqs.MarkLost(lost.FromSeq, lost.ToSeq);
        }

        if (ArrivalOrderBaseline)
        {
            Seqs.MarkStored(seq);
            Fold(d, env.ClockSuspect);
            return;
        }

        if (seq > LastSeq)
        {
            Seqs.MarkStored(seq);
            Fold(d, env.ClockSuspect);
            if (Window is { } w)
            {
                w.Events.Add(new WindowEvent(d, env.ClockSuspect));
                AfterInOrderFold(w, seq);
                w.Trim();
            }

            DropWindowWhenNothingMissing();
            return;
        }

        if (Seqs.IsStored(seq))
        {
            return;   // already stored and folded: a duplicate the planner could not see
        }

        // Below the last folded seq and not yet stored: a gap filled late, or a seq first rejected (or declared lost)
        // whose valid event came after all. Either way it now counts as stored, and the fold takes it in seq order.
        Seqs.MarkStored(seq);
        var from = Window?.CheckpointBelow(seq) ?? -1;
        if (from < 0)
        {
            // Older than the window: folded out of order for now; the owner replays the stream.
            NeedsRebuild = true;
            Fold(d, env.ClockSuspect);
        }
        else
        {
            Window!.Events.Insert(Window.InsertionIndex(seq), new WindowEvent(d, env.ClockSuspect));
            Refold(Window, from);
        }

        DropWindowWhenNothingMissing();
    }

    /// <summary>True while any seq of <paramref name="from"/>..<paramref name="to"/> is missing.</summary>
    public bool IsMissingAny(long from, long to) => Seqs.IsMissingAny(from, to);

    // Once nothing is missing (stored, rejected or declared lost), no event can arrive late: the window goes.
    private void DropWindowWhenNothingMissing()
    {
        if (Window is null)
        {
            return;
        }

        if (Seqs.MissingCount == 0)
        {
            Window = null;
        }
        else
        {
            Window.RecentGaps.RemoveAll(g => !IsMissingAny(g.From, g.To));
        }
    }

    /// <summary>
    /// True while a gap revealed less than <paramref name="wait"/> ago is still open: data from just before now may
    /// still be in transit. "Ago" in event time (<paramref name="at"/> against the revealing event's time) or in
    /// receive time (the last receive time against the revealing batch's), until both have passed: a backlog uploaded
    /// after a three-day outage reveals a gap that is three days old in event time, and the refill missing from it
    /// may still be on its way (the scoring's ten extra false flow alerts with late refills were exactly that).
    /// </summary>
    public bool AwaitsRecentData(DateTimeOffset at, TimeSpan wait) =>
        Window is { } w && w.RecentGaps.Exists(g =>
            (at - g.At < wait || (g.ReceivedAt is { } revealed && LastSeenAt is { } seen && seen - revealed < wait))
            && IsMissingAny(g.From, g.To));

    /// <summary>Restores checkpoint <paramref name="index"/> and folds the window's later events and restarts in seq order.</summary>
    private void Refold(FoldWindow w, int index)
    {
        var cp = w.Checkpoints[index];
        w.Checkpoints.RemoveRange(index + 1, w.Checkpoints.Count - index - 1);
        cp.RestoreTo(this);
        w.SinceCheckpoint = 0;
        var restarts = w.Restarts;
        var r = 0;
        while (r < restarts.Count && restarts[r].AfterSeq < cp.Seq)
        {
            r++;
        }

        var i = 0;
        while (i < w.Events.Count && w.Events[i].Event.Seq <= cp.Seq)
        {
            i++;
        }

        for (; i < w.Events.Count; i++)
        {
            var e = w.Events[i];
            for (; r < restarts.Count && restarts[r].AfterSeq < e.Event.Seq; r++)
            {
                Detectors.RestartFlow(restarts[r].Over);
            }

            Fold(e.Event, e.ClockSuspect);
            AfterInOrderFold(w, e.Event.Seq);
        }

        for (; r < restarts.Count; r++)
        {
            Detectors.RestartFlow(restarts[r].Over);
        }
    }

    private void AfterInOrderFold(FoldWindow w, long seq)
    {
        if (++w.SinceCheckpoint >= FoldWindow.CheckpointEvery)
        {
            w.Checkpoints.Add(FoldCheckpoint.Capture(this, seq));
            w.SinceCheckpoint = 0;
        }
    }

    /// <summary>Folds one device event into the device part of the state (the part <see cref="FoldCheckpoint"/> copies).</summary>
    private void Fold(DeviceEvent d, bool clockSuspect)
    {
        var env = new EventEnvelope(Version, d.Seq, default, clockSuspect);
        if (d.Seq > LastSeq)
        {
            LastSeq = d.Seq;
            if (!clockSuspect)
            {
                LastDeviceAt = d.At;
            }
        }

        var trusted = !clockSuspect;
        if (trusted)
        {
            // Time-based ledger arithmetic only moves forward in trusted event time.
            Ledger.AdvanceProgrammed(Prescription, DeliveryState, d.At);
            if (LastEventAt is null || d.At > LastEventAt)
            {
                LastEventAt = d.At;
            }
        }

        switch (d)
        {
            case TherapyPhaseChanged x when IsNewer(PhaseAt, x.At, trusted):
                Phase = x.Phase;
                Indication = x.Indication ?? Indication;
                PhaseAt = x.At;
                break;
            case PrescriptionSet x when IsNewer(PrescriptionAt, x.At, trusted):
                Prescription = x;
                PrescriptionAt = x.At;
                break;
            case DoseDelivered x:
                Ledger.OnDelivered(x.VolumeMl);
                break;
            case ReservoirLevelReported x:
                Ledger.OnLevel(x, trusted);
                break;
            case RefillPerformed x:
                Ledger.OnRefill(x);
                break;
            case DeliveryStateChanged x when IsNewer(DeliveryStateAt, x.At, trusted):
                DeliveryState = x.State;
                StopReason = DeliveryStates.IsStopped(x.State) ? x.Reason : null;
                DeliveryStateAt = x.At;
                break;
            case AlarmRaised x when IsNewer(_alarmChangedAt?.GetValueOrDefault(x.Code) ?? default, x.At, trusted):
                ActiveAlarms[x.Code] = new ActiveAlarm(x.Severity, x.At);
                AlarmChangedAt[x.Code] = x.At;
                break;
            case AlarmCleared x when IsNewer(_alarmChangedAt?.GetValueOrDefault(x.Code) ?? default, x.At, trusted):
                _activeAlarms?.Remove(x.Code);
                AlarmChangedAt[x.Code] = x.At;
                break;
            case StatusReported x when IsNewer(StatusAt, x.At, trusted):
                BatteryPct = x.BatteryPct ?? BatteryPct;
                BatteryV = x.BatteryV ?? BatteryV;
                TempC = x.TempC ?? TempC;
                Motor = x.Motor ?? Motor;
                StatusAt = x.At;
                break;
            case PainReported x:
                LastPainScore = x.Score;
                break;
        }

        Detectors.Observe(this, d, env);
    }

    // A clock-suspect event still counts when nothing newer is known (better than nothing), but never overrides.
    private static bool IsNewer(DateTimeOffset? current, DateTimeOffset at, bool trusted) =>
        current is null || current == default(DateTimeOffset) || (trusted && at >= current);

    private static bool IsNewer(DateTimeOffset current, DateTimeOffset at, bool trusted) =>
        IsNewer((DateTimeOffset?)current, at, trusted);

    /// <summary>True when seq is already stored: at or below the highest seq and not inside a gap.</summary>
    public bool HasSeq(long seq) => Seqs.IsStored(seq);

    /// <summary>The low-reservoir threshold in force.</summary>
    public double LowReservoirThresholdMl => Prescription?.LowReservoirAlarmMl ?? DefaultLowReservoirMl;

    /// <summary>The pump's status for dashboards (see <see cref="PumpStatuses"/>).</summary>
    public string Status
    {
        get
        {
            if (Version == 0)
            {
                return PumpStatuses.Unknown;
            }

            if (TherapyPhases.IsExplanted(Phase))
            {
                return PumpStatuses.Inactive;
            }

            if ((_activeAlarms?.Values.Any(a => AlarmSeverities.IsCritical(a.Severity)) ?? false) || AnomalyRecords.Any(a => AnomalySeverities.Parse(a.Severity) == AnomalySeverity.Critical))
            {
                return PumpStatuses.Critical;
            }

            if (HasActiveAlarms || AnomalyRecords.Any(a => AnomalySeverities.Parse(a.Severity) == AnomalySeverity.Warning))
            {
                return PumpStatuses.Attention;
            }

            return DeliveryStates.IsStopped(DeliveryState) ? PumpStatuses.Stopped : PumpStatuses.Ok;
        }
    }

    /// <summary>Forecast rate (mL/day): the programmed mean daily rate, zero while stopped.</summary>
    public double ForecastRateMlPerDay => DeliveryStates.IsStopped(DeliveryState) ? 0 : ProgrammedRate.DailyRate(Prescription);

    /// <summary>When the ledger's estimate reaches <paramref name="levelMl"/> at the forecast rate, or null.</summary>
    public DateTimeOffset? ForecastReaching(double levelMl)
    {
        var estimate = Ledger.EstimatedMl;
        var rate = ForecastRateMlPerDay;
        var from = Ledger.ProgrammedIntegratedTo ?? LastEventAt;
        if (estimate is null || rate <= 0 || from is null)
        {
            return null;
        }

        var days = Math.Max(0, (estimate.Value - levelMl) / rate);
        return days > 3650 ? null : from.Value.AddDays(days);
    }

    /// <summary>
    /// When the next refill is due: the ledger's forecast of the low-reservoir level, or earlier when the drug's own
    /// rules say so (ziconotide: first refill within 14 days, then every 40/84 days; see <see cref="Drugs.ZiconotideRefillRules"/>).
    /// </summary>
    public DateTimeOffset? NextRefillDue
    {
        get
        {
            var forecast = ForecastReaching(LowReservoirThresholdMl);
            return Detectors.Safety.ZiconotideRefillDueBy is { } rule && (forecast is null || rule < forecast) ? rule : forecast;
        }
    }

    /// <summary>
    /// The cohort flow correction the forecasts take (an open <c>cohort-flow-deviation</c> of the pump's lot, model or
    /// firmware, told by the cohort flow job), or null. Platform state: not part of the device fold's checkpoints.
    /// </summary>
    public AppliedFlowCorrection? FlowCorrection { get; set; }

    /// <summary>
    /// The API view of this state. With a cohort flow correction, <see cref="PumpView.FlowCorrection"/> carries the
    /// corrected forecasts, and the refill-due date takes the corrected one when it is earlier: a cohort's estimate may
    /// bring a refill forward, never put it off (an under-infusing cohort's later date is shown, not used).
    /// </summary>
    public PumpView ToView()
    {
        var view = UncorrectedView();
        var low = view.LowReservoirAt;
        var rule = view.NextRefillDueAt is { } d && (low is null || d < low);
        if (FlowCorrection?.ToCorrection() is not { } c)
        {
            return view with { NextRefillDueSource = view.NextRefillDueAt is null ? null : rule ? RefillDueSources.DrugRule : RefillDueSources.Ledger };
        }

        var corrected = c.Apply(view);
        var earlier = corrected.NextRefillDueAt is { } x && (view.NextRefillDueAt is null || x < view.NextRefillDueAt);
        return view with
        {
            FlowCorrection = corrected,
            NextRefillDueAt = earlier ? corrected.NextRefillDueAt : view.NextRefillDueAt,
            NextRefillDueSource = earlier ? RefillDueSources.CohortFlow
                : view.NextRefillDueAt is null ? null : rule ? RefillDueSources.DrugRule : RefillDueSources.Ledger,
        };
    }

    private PumpView UncorrectedView() => new()
    {
        Serial = Serial,
        HubId = HubId,
        Model = Device?.Model,
        Firmware = Device?.Firmware,
        Lot = Device?.Lot,
        ReservoirCapacityMl = Device?.ReservoirCapacityMl,
        Phase = Phase,
        Indication = Indication,
        Drug = Prescription?.Drug,
        Status = Status,
        ReservoirMl = Ledger.EstimatedMl is { } v ? Math.Round(v, 3) : null,
        ForecastEmptyAt = ForecastReaching(0),
        NextRefillDueAt = NextRefillDue,
        UncorrectedNextRefillDueAt = NextRefillDue,
        LowReservoirAt = ForecastReaching(LowReservoirThresholdMl),
        ForecastFrom = Ledger.ProgrammedIntegratedTo ?? LastEventAt,
        LowReservoirMl = LowReservoirThresholdMl,
        ActiveAlarms = [.. (_activeAlarms ?? EmptyJson<ActiveAlarm>.Instance).OrderBy(a => a.Key, StringComparer.Ordinal).Select(a => new ActiveAlarmView(a.Key, a.Value.Severity, a.Value.RaisedAt))],
        OpenAnomalies = [.. AnomalyRecords.OrderBy(a => a.DetectedAt).Select(a => a.ToView(Serial))],
        LastSeenAt = LastSeenAt,
        LastEventAt = LastEventAt,
        LastSeq = LastSeq,
        Prescription = Prescription,
        BatteryPct = BatteryPct,
        Gaps = Seqs.Missing,
        CommittedSeq = Seqs.Watermark,
        Ledger = Ledger.ToView(ForecastRateMlPerDay),
        DeliveryState = DeliveryState,
        Motor = Motor,
        Version = Version,
        LastPainScore = LastPainScore,
    };
}

/// <summary>An alarm the pump has raised and not cleared.</summary>
public sealed record ActiveAlarm(string Severity, DateTimeOffset RaisedAt);

/// <summary>An anomaly that is open or acknowledged.</summary>
public sealed class AnomalyRecord
{
    public string Id { get; set; } = "";
    public string Kind { get; set; } = "";
    public string Severity { get; set; } = "";
    public AnomalyStatus Status { get; set; } = AnomalyStatus.Open;
    public DateTimeOffset DetectedAt { get; set; }
    public string Summary { get; set; } = "";
    private Dictionary<string, double> _evidence = new(StringComparer.Ordinal);

    /// <summary>
    /// The numbers the detector used, kept in ordinal key order: events and snapshots come back from jsonb with their
    /// keys reordered, and a reloaded state must equal the live one.
    /// </summary>
    public Dictionary<string, double> Evidence
    {
        get => _evidence;
        set => _evidence = new Dictionary<string, double>(value.OrderBy(k => k.Key, StringComparer.Ordinal), StringComparer.Ordinal);
    }

    public string? AcknowledgedBy { get; set; }
    public DateTimeOffset? AcknowledgedAt { get => _acknowledgedAt; set => _acknowledgedAt = value; }

    private OptionalTime _acknowledgedAt;

    /// <summary>Receive time of the data after which it was decided (<see cref="DetectedAt"/> is the evidence's event time).</summary>
    public DateTimeOffset? RaisedAt { get => _raisedAt; set => _raisedAt = value; }

    private OptionalTime _raisedAt;

    /// <summary>The API view.</summary>
    public AnomalyView ToView(string serial) => new()
    {
        Id = Id, Serial = serial, Kind = Kind, Severity = Severity, Status = Status.ToWire(), DetectedAt = DetectedAt,
        Summary = Summary, Evidence = Evidence, AcknowledgedBy = AcknowledgedBy, AcknowledgedAt = AcknowledgedAt, RaisedAt = RaisedAt,
    };
}
