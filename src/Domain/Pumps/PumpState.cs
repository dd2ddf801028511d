using PumpFleet.Contracts.Events;
using PumpFleet.Contracts.Views;
using PumpFleet.Domain.Detection;
using PumpFleet.Domain.States;

namespace PumpFleet.Domain.Pumps;

/// <summary>Where an event came from and when it arrived: the stored envelope, beside the payload.</summary>
/// <param name="Version">Stream version of the event.</param>
/// <param name="Seq">Device seq, or null for platform events.</param>
/// <param name="ReceivedAt">Platform receive time.</param>
/// <param name="ClockSuspect">The event's <c>at</c> is not trusted; time-based folds skip it.</param>
public readonly record struct EventEnvelope(long Version, long? Seq, DateTimeOffset ReceivedAt, bool ClockSuspect);

/// <summary>
/// A pump's state as a pure, deterministic fold over its events: no I/O, no wall clock. The same events in the
/// same order always give the same state, so a replay, a rebuild, a snapshot + tail and an accelerated simulation
/// agree. Mutable for speed and memory (one instance per active pump); serialisable as a snapshot with System.Text.Json.
/// </summary>
public sealed class PumpState
{
    /// <summary>Bumped whenever the fold changes so that old snapshots are ignored and the stream is replayed.</summary>
    public const int SchemaVersion = 4;

    /// <summary>Default low-reservoir threshold when the prescription sets none (older SynchroMed labelling: 2 mL; notes/domain.md §0 item 4).</summary>
    public const double DefaultLowReservoirMl = 2.0;

    public string Serial { get; set; } = "";
    public string? HubId { get; set; }
    public DeviceInfo? Device { get; set; }
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
    public Dictionary<string, ActiveAlarm> ActiveAlarms { get; set; } = new(StringComparer.Ordinal);

    /// <summary>Event time of the last change per alarm code, so a late-arriving older raise cannot undo a newer clear.</summary>
    public Dictionary<string, DateTimeOffset> AlarmChangedAt { get; set; } = new(StringComparer.Ordinal);

    /// <summary>Highest device seq stored.</summary>
    public long LastSeq { get; set; }

    /// <summary>Event time of the event with the highest seq whose clock was trusted (the "previous event" of the clock rule).</summary>
    public DateTimeOffset? LastDeviceAt { get; set; }

    /// <summary>Latest trusted event time seen.</summary>
    public DateTimeOffset? LastEventAt { get; set; }

    /// <summary>Latest receive time.</summary>
    public DateTimeOffset? LastSeenAt { get; set; }

    /// <summary>Stream version (number of events applied).</summary>
    public long Version { get; set; }

    /// <summary>Missing seqs, sorted and disjoint.</summary>
    public List<SeqRange> Gaps { get; set; } = [];

    /// <summary>Event time of the latest phase / prescription / delivery-state / status change (late older events do not override).</summary>
    public DateTimeOffset? PhaseAt { get; set; }
    public DateTimeOffset? PrescriptionAt { get; set; }
    public DateTimeOffset? DeliveryStateAt { get; set; }
    public DateTimeOffset? StatusAt { get; set; }

    /// <summary>The platform's own reservoir ledger.</summary>
    public ReservoirLedger Ledger { get; set; } = new();

    /// <summary>Anomalies not yet resolved, by id.</summary>
    public Dictionary<string, AnomalyRecord> Anomalies { get; set; } = new(StringComparer.Ordinal);

    /// <summary>The anomaly detectors' accumulators (folded here so that a replay rebuilds them exactly).</summary>
    public DetectorState Detectors { get; set; } = new();

    /// <summary>Applies one stored event.</summary>
    public void Apply(PumpEvent e, EventEnvelope env)
    {
        Version = env.Version;
        if (LastSeenAt is null || env.ReceivedAt > LastSeenAt)
        {
            LastSeenAt = env.ReceivedAt;
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
                AddGap(x.FromSeq, x.ToSeq);
                break;
            case AnomalyDetected x:
                Anomalies[x.AnomalyId] = new AnomalyRecord
                {
                    Id = x.AnomalyId, Kind = x.Kind, Severity = x.Severity, Status = AnomalyStatus.Open, DetectedAt = x.At,
                    Summary = x.Summary, Evidence = new Dictionary<string, double>(x.Evidence, StringComparer.Ordinal),
                };
                Detectors.Observe(x);
                break;
            case AnomalyAcknowledged x when Anomalies.TryGetValue(x.AnomalyId, out var a):
                a.Status = AnomalyStatus.Acknowledged;
                a.AcknowledgedBy = x.By;
                a.AcknowledgedAt = x.At;
                break;
            case AnomalyResolved x:
                Anomalies.Remove(x.AnomalyId);
                break;
        }
    }

    private void ApplyDevice(DeviceEvent d, EventEnvelope env)
    {
        var seq = d.Seq;
        if (seq > LastSeq)
        {
            LastSeq = seq;
            if (!env.ClockSuspect)
            {
                LastDeviceAt = d.At;
            }
        }
        else
        {
            RemoveFromGaps(seq);
        }

        var trusted = !env.ClockSuspect;
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
            case AlarmRaised x when IsNewer(AlarmChangedAt.GetValueOrDefault(x.Code), x.At, trusted):
                ActiveAlarms[x.Code] = new ActiveAlarm(x.Severity, x.At);
                AlarmChangedAt[x.Code] = x.At;
                break;
            case AlarmCleared x when IsNewer(AlarmChangedAt.GetValueOrDefault(x.Code), x.At, trusted):
                ActiveAlarms.Remove(x.Code);
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
    public bool HasSeq(long seq) => seq <= LastSeq && !Gaps.Any(g => g.From <= seq && seq <= g.To);

    private void AddGap(long from, long to)
    {
        Gaps.Add(new SeqRange(from, to));
        Gaps.Sort((a, b) => a.From.CompareTo(b.From));
    }

    private void RemoveFromGaps(long seq)
    {
        var i = Gaps.FindIndex(g => g.From <= seq && seq <= g.To);
        if (i < 0)
        {
            return;
        }

        var g = Gaps[i];
        Gaps.RemoveAt(i);
        if (g.From < seq)
        {
            Gaps.Insert(i++, new SeqRange(g.From, seq - 1));
        }

        if (seq < g.To)
        {
            Gaps.Insert(i, new SeqRange(seq + 1, g.To));
        }
    }

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

            if (ActiveAlarms.Values.Any(a => AlarmSeverities.IsCritical(a.Severity)) || Anomalies.Values.Any(a => AnomalySeverities.Parse(a.Severity) == AnomalySeverity.Critical))
            {
                return PumpStatuses.Critical;
            }

            if (ActiveAlarms.Count > 0 || Anomalies.Values.Any(a => AnomalySeverities.Parse(a.Severity) == AnomalySeverity.Warning))
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

    /// <summary>The API view of this state.</summary>
    public PumpView ToView() => new()
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
        ActiveAlarms = [.. ActiveAlarms.OrderBy(a => a.Key, StringComparer.Ordinal).Select(a => new ActiveAlarmView(a.Key, a.Value.Severity, a.Value.RaisedAt))],
        OpenAnomalies = [.. Anomalies.Values.OrderBy(a => a.DetectedAt).Select(a => a.ToView(Serial))],
        LastSeenAt = LastSeenAt,
        LastEventAt = LastEventAt,
        LastSeq = LastSeq,
        Prescription = Prescription,
        BatteryPct = BatteryPct,
        Gaps = [.. Gaps],
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
    public DateTimeOffset? AcknowledgedAt { get; set; }

    /// <summary>The API view.</summary>
    public AnomalyView ToView(string serial) => new()
    {
        Id = Id, Serial = serial, Kind = Kind, Severity = Severity, Status = Status.ToWire(), DetectedAt = DetectedAt,
        Summary = Summary, Evidence = Evidence, AcknowledgedBy = AcknowledgedBy, AcknowledgedAt = AcknowledgedAt,
    };
}
