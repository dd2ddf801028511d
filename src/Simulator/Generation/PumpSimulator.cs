using System.Text.Json.Nodes;
using PumpFleet.Contracts.Events;
using PumpFleet.Simulator.Faults;
using PumpFleet.Simulator.Wire;

namespace PumpFleet.Simulator.Generation;

/// <summary>
/// One pump's physics and firmware behaviour. It keeps two reservoir volumes: the TRUE one (what is physically in
/// the reservoir) and the one the pump BELIEVES from its programmed arithmetic. The pump's own reports
/// (dose.delivered, estimated levels, LOW_RESERVOIR) come from the belief; sensors and aspiration see the truth.
/// Pure: everything comes from the pump's own seeded random stream.
/// </summary>
internal sealed partial class PumpSimulator
{
    private static readonly DateTimeOffset ResetEpoch = new(2000, 1, 1, 0, 0, 0, TimeSpan.Zero);
    private static readonly TimeSpan RefillStop = TimeSpan.FromMinutes(15);

    private readonly SimulatorOptions _o;
    private readonly Random _rng;
    private readonly List<PlannedFault> _faults;
    private readonly bool[] _faultStarted;
    private readonly bool[] _faultEnded;
    private readonly List<(DateTimeOffset Start, DateTimeOffset End)> _clockResets = [];
    private readonly List<(DateTimeOffset At, int Order, DeviceEvent Event, DateTimeOffset? From)> _pending = [];
    private readonly Queue<DateTimeOffset> _grantedBoluses = new();
    private readonly string _indication;
    private readonly double _capacity;

    private long _seq;
    private int _order;
    private string _phase;
    private readonly DateTimeOffset _implantAt;
    private readonly List<(DateTimeOffset At, string Phase)> _trialSteps = [];
    private Prescription _rx;
    private double _trueMl;
    private double _believedMl;
    private readonly double _bias;
    private DateTimeOffset _nextRefill;
    private DateTimeOffset _nextLevel;
    private DateTimeOffset _nextStatus;
    private DateTimeOffset? _lastBolus;
    private readonly double _bolusRequestsPerDay;
    private readonly double _painReportsPerDay;
    private readonly double _painBaseline;
    private double _deliveryRatio = 1;
    private DateTimeOffset _eriAt;
    private DateTimeOffset _eosAt;
    private bool _eriRaised;
    private bool _dead;
    private bool _running = true;
    private bool _lowAlarm;
    private bool _criticalLowAlarm;

    // Fault state.
    private bool _fullStall;
    private double _flowDeviation;
    private bool _occluded;
    private DateTimeOffset? _occlusionAlarmAt;
    private bool _occlusionAlarm;
    private (double EpisodesPerDay, double EpisodeHours, DateTimeOffset Until)? _intermittent;
    private DateTimeOffset? _episodeEnd;
    private double? _pocketFillFraction;
    private PlannedFault? _pocketFillFault;
    private double? _wrongConcentrationFactor;
    private PlannedFault? _wrongConcentrationFault;

    public PumpProfile Profile { get; }

    /// <summary>The true reservoir volume (for tests and scoring).</summary>
    public double TrueVolumeMl => _trueMl;

    /// <summary>The volume the pump's arithmetic believes is left.</summary>
    public double BelievedVolumeMl => _believedMl;

    public DateTimeOffset EriAt => _eriAt;

    public DateTimeOffset EosAt => _eosAt;

    internal Prescription Prescription => _rx;

    /// <summary>The pump's indication (protocol vocabulary).</summary>
    internal string Indication => _indication;

    /// <summary>When the pump was (or, for a pump in trial at the start, will be) implanted.</summary>
    internal DateTimeOffset ImplantAt => _implantAt;

    /// <summary>The trial phases the pump reports before its implant (empty for a pump implanted before the start).</summary>
    internal IReadOnlyList<(DateTimeOffset At, string Phase)> TrialSteps => _trialSteps;

    public PumpSimulator(SimulatorOptions o, PumpProfile profile, IReadOnlyList<PlannedFault> faults)
    {
        _o = o;
        Profile = profile;
        _rng = SeededRandom.For(o.Seed, "pump", profile.Index);
        _faults = [.. faults];
        _faultStarted = new bool[_faults.Count];
        _faultEnded = new bool[_faults.Count];
        _capacity = profile.Device.ReservoirCapacityMl;
        _indication = _rng.PickWeighted(Catalog.Indications);
        _rx = Prescription.Create(Catalog.DrugFor(_indication, _rng), _rng);

        // Healthy SynchroMed II pumps run about +1 % over programmed (§1.1); keep within ±3 %.
        _bias = Math.Clamp(_rng.Gaussian(0.01, 0.01), -0.03, 0.03);
        _bolusRequestsPerDay = _rx.Bolus is null ? 0 : _rng.Uniform(0.5, 8);
        _painReportsPerDay = _rng.Uniform(0.3, 2);
        _painBaseline = _rng.Uniform(2, 5);

        // Product life 5–7 years, design life 84 months, mean battery replacement at 55 months; ERI→EOS ≥ 90 days (§0.5, §1.4).
        var lifeMonths = _rng.Uniform(55, 84);
        var eosGap = TimeSpan.FromDays(_rng.Uniform(90, 120));
        var ageDays = _rng.Uniform(0, (lifeMonths * 30.44) + eosGap.TotalDays - 2);

        var years = o.Duration.TotalDays / 365.25;
        var resetProbability = 1 - Math.Exp(-o.ClockResetRatePerPumpYear * years);
        if (_rng.NextDouble() < resetProbability)
        {
            var start = o.Start + (o.Duration * _rng.NextDouble());
            _clockResets.Add((start, start + TimeSpan.FromHours(_rng.Uniform(1, 12))));
        }

        if (_rng.Chance(o.TrialFraction))
        {
            _phase = "trial";
            _trialSteps.Add((o.Start, "trial-single-dose"));
            var t = o.Start + TimeSpan.FromDays(1);
            if (_rng.Chance(0.5))
            {
                _trialSteps.Add((t, "trial-multi-dose"));
                t += TimeSpan.FromDays(2);
            }

            if (_rng.Chance(0.4))
            {
                _trialSteps.Add((t, "trial-continuous"));
                t += TimeSpan.FromDays(3);
            }

            _implantAt = FleetPlan.AlignUp(o, t + TimeSpan.FromDays(_rng.Uniform(1, 5)));
            ageDays = 0;
        }
        else
        {
            _phase = "implanted";
            _implantAt = o.Start - TimeSpan.FromMinutes(Math.Round(ageDays * 1440));
        }

        // Whole minutes keep the wire times readable.
        var eri = (_phase == "trial" ? _implantAt : o.Start - TimeSpan.FromDays(ageDays)) + TimeSpan.FromDays(lifeMonths * 30.44);
        _eriAt = new DateTimeOffset(eri.UtcTicks - (eri.UtcTicks % TimeSpan.TicksPerMinute), TimeSpan.Zero);
        _eosAt = _eriAt + TimeSpan.FromMinutes(Math.Round(eosGap.TotalMinutes));
        _nextLevel = o.Start;
        _nextStatus = o.Start;
    }

    /// <summary>Advances the pump over one reporting interval and appends its events (seq and clock applied) to <paramref name="sink"/>.</summary>
    public void Step(DateTimeOffset t0, DateTimeOffset t1, List<GeneratedEvent> sink, List<GroundTruthRecord> truth)
    {
        if (_dead)
        {
            return;
        }

        if (_phase == "trial")
        {
            StepTrial(t0, t1);
            if (_phase == "trial")
            {
                Flush(sink);
                return;
            }
        }
        else if (t0 == _o.Start)
        {
            StartImplanted(t0);
        }

        UpdateFaults(t0, truth);
        var from = t0;
        if (t0 >= _nextRefill)
        {
            Refill(t0, truth);
            from = t0 + RefillStop;
        }

        var end = t1;
        if (_eosAt <= t1)
        {
            end = _eosAt < from ? from : _eosAt;
        }

        Boluses(from, end);
        Basal(from, end, t0);
        Battery(t0, t1);
        if (_dead)
        {
            Flush(sink);
            return;
        }

        ReservoirAlarms(t1);
        OcclusionAlarm(t0, t1);
        Pain(t0, t1);
        Reports(t1);
        Flush(sink);
    }

    private void Add(DateTimeOffset at, DeviceEvent e, DateTimeOffset? from = null) => _pending.Add((at, _order++, e, from));

    private void Flush(List<GeneratedEvent> sink)
    {
        _pending.Sort((a, b) => a.At != b.At ? a.At.CompareTo(b.At) : a.Order.CompareTo(b.Order));
        foreach (var (at, _, e, from) in _pending)
        {
            var reported = PumpClock(at);
            DeviceEvent stamped = from is { } f && e is DoseDelivered d
                ? d with { Seq = ++_seq, At = reported, From = reported - (at - f) }
                : e with { Seq = ++_seq, At = reported };
            sink.Add(new GeneratedEvent(stamped, WireJson.Event(stamped)));
        }

        _pending.Clear();
    }

    /// <summary>After a power loss some pump clocks restart at 2000-01-01 until the hub resynchronises them.</summary>
    private DateTimeOffset PumpClock(DateTimeOffset trueTime)
    {
        foreach (var (start, end) in _clockResets)
        {
            if (trueTime >= start && trueTime < end)
            {
                return ResetEpoch + (trueTime - start);
            }
        }

        return trueTime;
    }

    private void StepTrial(DateTimeOffset t0, DateTimeOffset t1)
    {
        foreach (var (at, phase) in _trialSteps)
        {
            if (at >= t0 && at < t1)
            {
                Add(at, new TherapyPhaseChanged { Seq = 0, At = default, Phase = phase, Indication = _indication });
            }
        }

        if (t0 >= _implantAt)
        {
            Implant(t0);
            return;
        }

        Pain(t0, t1);
    }

    /// <summary>Implant after a successful trial: first fill, priming bolus of the catheter volume, delivery starts.</summary>
    private void Implant(DateTimeOffset t)
    {
        _phase = "implanted";
        Add(t, new TherapyPhaseChanged { Seq = 0, At = default, Phase = "implanted", Indication = _indication });
        Add(t, _rx.ToEvent());
        Add(t + TimeSpan.FromMinutes(5), new RefillPerformed
        {
            Seq = 0, At = default, ExpectedResidualMl = 0, AspiratedResidualMl = 0, AddedMl = _capacity,
            Drug = _rx.Drug.Name, Concentration = _rx.Concentration,
        });

        // Catheter volume = length × 0.0026 mL/cm (§1.2), catheters of roughly 40–110 cm implanted.
        var priming = Math.Round(_rng.Uniform(40, 110) * 0.0026, 4);
        Add(t + TimeSpan.FromMinutes(15), new DoseDelivered { Seq = 0, At = default, From = default, VolumeMl = priming, Kind = "priming" },
            t + TimeSpan.FromMinutes(6));
        Add(t + TimeSpan.FromMinutes(15), new DeliveryStateChanged { Seq = 0, At = default, State = "running" });
        _trueMl = _capacity - priming;
        _believedMl = _capacity - priming;

        // Ziconotide: first refill within 14 days (§1.5).
        _nextRefill = _rx.Drug == Catalog.Ziconotide ? ClinicTime(t + TimeSpan.FromDays(13)) : ScheduleNextRefill(t);
        _nextLevel = t + _o.ReportingInterval;
        _nextStatus = t + _o.ReportingInterval;
    }

    /// <summary>A pump already implanted when the simulation starts: mid-way between refills.</summary>
    private void StartImplanted(DateTimeOffset t)
    {
        Add(t, new TherapyPhaseChanged { Seq = 0, At = default, Phase = "implanted", Indication = _indication });
        Add(t, _rx.ToEvent());
        Add(t, new DeliveryStateChanged { Seq = 0, At = default, State = "running" });
        var interval = RefillIntervalDays();
        var since = _rng.Uniform(0, interval * 0.9);
        var used = DailyUseMl() * since;
        _believedMl = Math.Max(_rx.LowReservoirAlarmMl + 0.5, _capacity - used);
        _trueMl = Math.Max(0.5, _believedMl - (used * _bias));
        _nextRefill = ClinicTime(t + TimeSpan.FromDays(interval - since));
        if (_eriAt < t)
        {
            // ERI was already raised before the run; re-announce it so the platform knows the pump's state.
            _eriRaised = true;
            Add(t, new AlarmRaised { Seq = 0, At = default, Code = "ELECTIVE_REPLACEMENT", Severity = "non-critical" });
        }
    }

    private double DailyUseMl()
    {
        var bolus = _rx.Bolus is { } b ? Math.Min(_bolusRequestsPerDay * 0.7, b.MaxPerDay) * b.DoseMl : 0;
        return _rx.AverageRateMlPerDay + bolus;
    }

    /// <summary>4–12 weeks, but early enough that the reservoir never reaches the alarm; ziconotide at least every 40 days (§1.5).</summary>
    private double RefillIntervalDays()
    {
        var usable = _capacity - _rx.LowReservoirAlarmMl - 1;
        var interval = Math.Min(_rng.Uniform(28, 84), usable / DailyUseMl() * 0.9);
        if (_rx.Drug == Catalog.Ziconotide)
        {
            interval = Math.Min(interval, 40);
        }

        return Math.Max(interval, 7);
    }

    private DateTimeOffset ScheduleNextRefill(DateTimeOffset after)
    {
        var days = RefillIntervalDays();

        // Some patients miss their appointment; that is when low-reservoir alarms happen.
        if (_rng.Chance(0.05))
        {
            days += _rng.Uniform(7, 21);
        }

        return ClinicTime(after + TimeSpan.FromDays(days));
    }

    private DateTimeOffset ClinicTime(DateTimeOffset day)
    {
        var date = new DateTimeOffset(day.UtcDateTime.Date, TimeSpan.Zero);
        return FleetPlan.AlignUp(_o, date + TimeSpan.FromHours(9 + _rng.Next(0, 7)));
    }

    private void Refill(DateTimeOffset t, List<GroundTruthRecord> truth)
    {
        Add(t, new DeliveryStateChanged { Seq = 0, At = default, State = "stopped", Reason = "programming" });
        var expected = Math.Round(_believedMl, 2);

        // Syringe read-out of the true residual, ±0.1 mL.
        var aspirated = Math.Round(Math.Max(0, _trueMl + _rng.Gaussian(0, 0.1)), 2);
        var added = _rng.Chance(0.8) ? _capacity : Math.Round(_capacity - _rng.Uniform(0.5, 2), 1);
        var filled = _rx.Concentration;
        if (_wrongConcentrationFactor is { } factor && _wrongConcentrationFault is { } wrong)
        {
            // The prescription (and so the programmed rate) stays; only what is in the reservoir changes.
            filled = filled with { Value = Math.Round(filled.Value * factor, 4) };
            var parameters = (JsonObject)wrong.Parameters.DeepClone();
            parameters["prescribedValue"] = _rx.Concentration.Value;
            parameters["filledValue"] = filled.Value;
            parameters["unit"] = filled.Unit;
            parameters["drug"] = _rx.Drug.Name;
            parameters["plannedAfter"] = WireJson.FormatTime(wrong.Start);
            truth.Add(new GroundTruthRecord(Profile.Serial, Profile.HubId, FaultKind.WrongConcentration, t + TimeSpan.FromMinutes(10), null, parameters));
            _wrongConcentrationFactor = null;
            _wrongConcentrationFault = null;
        }

        Add(t + TimeSpan.FromMinutes(10), new RefillPerformed
        {
            Seq = 0, At = default, ExpectedResidualMl = expected, AspiratedResidualMl = aspirated, AddedMl = added,
            Drug = _rx.Drug.Name, Concentration = filled,
        });
        _believedMl = added;
        _trueMl = added;
        if (_pocketFillFraction is { } fraction && _pocketFillFault is { } fault)
        {
            _trueMl = added * (1 - fraction);
            var parameters = (JsonObject)fault.Parameters.DeepClone();
            parameters["addedMl"] = added;
            parameters["plannedAfter"] = WireJson.FormatTime(fault.Start);
            truth.Add(new GroundTruthRecord(Profile.Serial, Profile.HubId, FaultKind.PocketFill, t + TimeSpan.FromMinutes(10), null, parameters));
            _pocketFillFraction = null;
            _pocketFillFault = null;
        }

        // Titration at refill, e.g. baclofen +10–40 % / −10–20 % (§1.5).
        if (_rng.Chance(0.25))
        {
            _rx = _rx.Titrate(_rng.Chance(0.7) ? _rng.Uniform(1.05, 1.3) : _rng.Uniform(0.8, 0.95));
            Add(t + TimeSpan.FromMinutes(12), _rx.ToEvent());
        }

        Add(t + RefillStop, new DeliveryStateChanged { Seq = 0, At = default, State = _fullStall ? "stopped" : "running", Reason = _fullStall ? "stall" : null });
        if (_lowAlarm)
        {
            Add(t + RefillStop, new AlarmCleared { Seq = 0, At = default, Code = "LOW_RESERVOIR" });
            _lowAlarm = false;
        }

        if (_criticalLowAlarm)
        {
            Add(t + RefillStop, new AlarmCleared { Seq = 0, At = default, Code = "CRITICAL_LOW_RESERVOIR" });
            _criticalLowAlarm = false;
        }

        _nextRefill = ScheduleNextRefill(t);
    }
}
