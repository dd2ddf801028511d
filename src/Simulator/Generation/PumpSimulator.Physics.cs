using System.Text.Json.Nodes;
using PumpFleet.Contracts.Events;
using PumpFleet.Simulator.Faults;
using PumpFleet.Simulator.Wire;

namespace PumpFleet.Simulator.Generation;

internal sealed partial class PumpSimulator
{
    /// <summary>No SynchroMed critical-low threshold is documented; 1 mL follows the MiniMed empty-reservoir message (§1.4).</summary>
    private const double CriticalLowMl = 1.0;

    private void UpdateFaults(DateTimeOffset t0, List<GroundTruthRecord> truth)
    {
        for (var i = 0; i < _faults.Count; i++)
        {
            var f = _faults[i];
            if (!_faultStarted[i] && f.Start <= t0)
            {
                _faultStarted[i] = true;
                StartFault(f, t0, truth);
            }

            if (_faultStarted[i] && !_faultEnded[i] && f.End is { } end && end <= t0)
            {
                _faultEnded[i] = true;
                EndFault(f, t0);
            }
        }
    }

    private void StartFault(PlannedFault f, DateTimeOffset t, List<GroundTruthRecord> truth)
    {
        var parameters = (JsonObject)f.Parameters.DeepClone();
        switch (f.Kind)
        {
            case FaultKind.FullStall:
                _fullStall = true;
                _running = false;
                Add(t, new AlarmRaised { Seq = 0, At = default, Code = "MOTOR_STALL", Severity = "critical" });
                Add(t, new DeliveryStateChanged { Seq = 0, At = default, State = "stopped", Reason = "stall" });
                break;
            case FaultKind.IntermittentStall:
                _intermittent = (Number(f, "episodesPerDay"), Number(f, "episodeHours"), f.End ?? DateTimeOffset.MaxValue);
                break;
            case FaultKind.UnderInfusion:
                _flowDeviation -= Number(f, "percent") / 100;
                break;
            case FaultKind.OverInfusion:
                _flowDeviation += Number(f, "percent") / 100;
                break;
            case FaultKind.PocketFill:
                // Takes effect, and is recorded, at the next refill.
                _pocketFillFraction = Math.Clamp(Number(f, "fractionInPocket"), 0, 1);
                _pocketFillFault = f;
                return;
            case FaultKind.WrongConcentration:
                // Takes effect, and is recorded, at the next refill.
                _wrongConcentrationFactor = Number(f, "factor");
                _wrongConcentrationFault = f;
                return;
            case FaultKind.CatheterOcclusion:
                _occluded = true;
                if (f.Parameters["alarm"]?.GetValue<bool>() == true)
                {
                    _occlusionAlarmAt = t + TimeSpan.FromHours(Number(f, "alarmDelayHours"));
                }

                break;
            case FaultKind.BatteryFailure:
                Add(t, new AlarmRaised { Seq = 0, At = default, Code = "LOW_BATTERY_RESET", Severity = "critical" });
                var eri = t + TimeSpan.FromDays(Number(f, "eriAfterDays"));
                if (eri < _eriAt)
                {
                    _eriAt = eri;
                }

                var eos = _eriAt + TimeSpan.FromDays(Number(f, "eosAfterEriDays"));
                if (eos < _eosAt)
                {
                    _eosAt = eos;
                }

                parameters["eriAt"] = WireJson.FormatTime(_eriAt);
                parameters["eosAt"] = WireJson.FormatTime(_eosAt);
                break;
        }

        truth.Add(new GroundTruthRecord(Profile.Serial, Profile.HubId, f.Kind, t, f.End, parameters));
    }

    private void EndFault(PlannedFault f, DateTimeOffset t)
    {
        switch (f.Kind)
        {
            case FaultKind.FullStall:
                // An explicit end means the pump was repaired or replaced.
                _fullStall = false;
                _running = true;
                Add(t, new AlarmCleared { Seq = 0, At = default, Code = "MOTOR_STALL" });
                Add(t, new DeliveryStateChanged { Seq = 0, At = default, State = "running" });
                break;
            case FaultKind.IntermittentStall:
                _intermittent = null;
                break;
            case FaultKind.UnderInfusion:
                _flowDeviation += Number(f, "percent") / 100;
                break;
            case FaultKind.OverInfusion:
                _flowDeviation -= Number(f, "percent") / 100;
                break;
            case FaultKind.CatheterOcclusion:
                _occluded = false;
                _occlusionAlarmAt = null;
                if (_occlusionAlarm)
                {
                    _occlusionAlarm = false;
                    Add(t, new AlarmCleared { Seq = 0, At = default, Code = "CATHETER_OCCLUSION" });
                }

                break;
        }
    }

    private static double Number(PlannedFault f, string name) => f.Parameters[name]?.GetValue<double>() ?? 0;

    private void Boluses(DateTimeOffset from, DateTimeOffset end)
    {
        if (_rx.Bolus is not { } b || !_running || end <= from)
        {
            return;
        }

        var duration = TimeSpan.FromTicks(Math.Min(TimeSpan.FromMinutes(10).Ticks, (end - from).Ticks / 2));
        var n = _rng.Poisson(_bolusRequestsPerDay * (end - from).TotalDays);
        var times = new List<DateTimeOffset>(n);
        for (var i = 0; i < n; i++)
        {
            times.Add(from + ((end - duration - from) * _rng.NextDouble()));
        }

        times.Sort();
        foreach (var t in times)
        {
            while (_grantedBoluses.Count > 0 && _grantedBoluses.Peek() <= t - TimeSpan.FromDays(1))
            {
                _grantedBoluses.Dequeue();
            }

            string? refusal = null;
            if (_lastBolus is { } last && t - last < TimeSpan.FromMinutes(b.LockoutMin))
            {
                refusal = "lockout";
            }
            else if (_grantedBoluses.Count >= b.MaxPerDay)
            {
                refusal = "daily-limit";
            }

            Add(t, new BolusRequested { Seq = 0, At = default, Granted = refusal is null, Reason = refusal });
            if (refusal is not null)
            {
                continue;
            }

            _lastBolus = t;
            _grantedBoluses.Enqueue(t);
            var stalled = InStallEpisode(t);
            var motor = stalled ? 0 : b.DoseMl;
            Add(t + duration, new DoseDelivered { Seq = 0, At = default, From = default, VolumeMl = motor, Kind = "patient-bolus" }, t);
            Deliver(motor);
        }
    }

    private bool InStallEpisode(DateTimeOffset t) => _fullStall || (_episodeEnd is { } e && t < e);

    /// <summary>Moves volume: the pump's belief drops by what the motor believes it pushed; the true reservoir by the true flow.</summary>
    private double Deliver(double motorMl)
    {
        _believedMl = Math.Max(0, _believedMl - motorMl);
        if (_occluded || motorMl <= 0)
        {
            return 0;
        }

        var trueOut = motorMl * Math.Max(0, 1 + _bias + _flowDeviation + _rng.Gaussian(0, 0.005));
        trueOut = Math.Min(trueOut, _trueMl);
        _trueMl -= trueOut;
        return trueOut;
    }

    private void Basal(DateTimeOffset from, DateTimeOffset end, DateTimeOffset reportFrom)
    {
        if (_intermittent is { } im && _episodeEnd is null && from < im.Until
            && _rng.Chance(im.EpisodesPerDay * (end - from).TotalDays))
        {
            _episodeEnd = from + TimeSpan.FromHours(im.EpisodeHours * _rng.Uniform(0.5, 1.5));
            Add(from, new AlarmRaised { Seq = 0, At = default, Code = "MOTOR_STALL", Severity = "critical" });
        }

        var programmed = _running ? _rx.Volume(from, end) : 0;
        var stallFraction = 0.0;
        if (_fullStall)
        {
            stallFraction = 1;
        }
        else if (_episodeEnd is { } ee && end > from)
        {
            var overlapEnd = ee < end ? ee : end;
            stallFraction = Math.Clamp((overlapEnd - from) / (end - from), 0, 1);
            if (ee <= end)
            {
                Add(ee, new AlarmCleared { Seq = 0, At = default, Code = "MOTOR_STALL" });
                _episodeEnd = null;
            }
        }

        var motor = Math.Round(programmed * (1 - stallFraction), 6);
        var toPatient = Deliver(motor);
        Add(end, new DoseDelivered { Seq = 0, At = default, From = default, VolumeMl = motor, Kind = "basal" }, reportFrom);

        // Fraction of the programmed drug that really reached the patient, smoothed over about a day; drives pain scores.
        if (programmed > 0 || !_running)
        {
            var ratio = programmed > 0 ? Math.Clamp(toPatient / programmed, 0, 1.5) : 0;
            var alpha = Math.Min(1, (end - reportFrom).TotalDays);
            _deliveryRatio += alpha * (ratio - _deliveryRatio);
        }
    }

    private void Battery(DateTimeOffset t0, DateTimeOffset t1)
    {
        if (!_eriRaised && _eriAt < t1)
        {
            _eriRaised = true;
            Add(_eriAt > t0 ? _eriAt : t0, new AlarmRaised { Seq = 0, At = default, Code = "ELECTIVE_REPLACEMENT", Severity = "non-critical" });
        }

        if (_eosAt <= t1)
        {
            var at = _eosAt > t0 ? _eosAt : t0;
            Add(at, new AlarmRaised { Seq = 0, At = default, Code = "END_OF_SERVICE", Severity = "critical" });
            Add(at, new DeliveryStateChanged { Seq = 0, At = default, State = "stopped", Reason = "end-of-service" });
            Add(at, new StatusReported { Seq = 0, At = default, BatteryPct = 0, BatteryV = BatteryVolts(0), Motor = "stopped" });
            _running = false;
            _dead = true;
        }
    }

    /// <summary>Linear from 100 % at implant to 10 % at ERI, then to 0 at EOS. The shape is illustrative; no discharge curve was found.</summary>
    internal double BatteryPct(DateTimeOffset t)
    {
        if (t >= _eosAt)
        {
            return 0;
        }

        if (t >= _eriAt)
        {
            return Math.Round(10 * (_eosAt - t) / (_eosAt - _eriAt), 1);
        }

        var life = _eriAt - _implantAt;
        var frac = life > TimeSpan.Zero ? Math.Clamp((t - _implantAt) / life, 0, 1) : 0;
        return Math.Round(Math.Max(10, 100 - (90 * frac)), 1);
    }

    private static double BatteryVolts(double pct) => Math.Round(2.6 + (0.6 * pct / 100), 3);

    private void ReservoirAlarms(DateTimeOffset t)
    {
        // Computed from the programmed arithmetic, never from the true volume (§0.1).
        if (!_lowAlarm && _believedMl <= _rx.LowReservoirAlarmMl)
        {
            _lowAlarm = true;
            Add(t, new AlarmRaised { Seq = 0, At = default, Code = "LOW_RESERVOIR", Severity = "non-critical" });
        }

        if (!_criticalLowAlarm && _believedMl <= CriticalLowMl)
        {
            _criticalLowAlarm = true;
            Add(t, new AlarmRaised { Seq = 0, At = default, Code = "CRITICAL_LOW_RESERVOIR", Severity = "critical" });
        }
    }

    private void OcclusionAlarm(DateTimeOffset t0, DateTimeOffset t1)
    {
        if (_occlusionAlarmAt is { } at && at < t1 && !_occlusionAlarm)
        {
            _occlusionAlarm = true;
            Add(at > t0 ? at : t0, new AlarmRaised { Seq = 0, At = default, Code = "CATHETER_OCCLUSION", Severity = "critical" });
        }
    }

    private void Pain(DateTimeOffset t0, DateTimeOffset t1)
    {
        var n = _rng.Poisson(_painReportsPerDay * (t1 - t0).TotalDays);
        for (var i = 0; i < n; i++)
        {
            var at = t0 + ((t1 - t0) * _rng.NextDouble());
            var withdrawal = _phase == "trial" ? 1.5 : 5 * Math.Max(0, 1 - _deliveryRatio);
            var score = (int)Math.Round(Math.Clamp(_painBaseline + withdrawal + _rng.Gaussian(0, 1), 0, 10));
            Add(at, new PainReported { Seq = 0, At = default, Score = score });
        }
    }

    private void Reports(DateTimeOffset t)
    {
        if (t >= _nextLevel)
        {
            var volume = Profile.HasSensor
                ? Math.Round(Math.Max(0, _trueMl + _rng.Gaussian(0, 0.1)), 3)
                : Math.Round(_believedMl, 3);
            Add(t, new ReservoirLevelReported { Seq = 0, At = default, VolumeMl = volume, Source = Profile.HasSensor ? "measured" : "estimated" });
            while (_nextLevel <= t)
            {
                _nextLevel += _o.LevelInterval;
            }
        }

        if (t >= _nextStatus)
        {
            var pct = BatteryPct(t);
            var motor = InStallEpisode(t) ? "stalled" : _running ? "running" : "stopped";
            Add(t, new StatusReported
            {
                Seq = 0, At = default, BatteryPct = pct, BatteryV = BatteryVolts(pct),
                TempC = Math.Round(_rng.Gaussian(37.0, 0.3), 1), Motor = motor,
            });
            while (_nextStatus <= t)
            {
                _nextStatus += TimeSpan.FromDays(1);
            }
        }
    }
}
