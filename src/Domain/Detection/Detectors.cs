using System.Globalization;
using PumpFleet.Domain.Drugs;
using PumpFleet.Domain.Pumps;
using PumpFleet.Domain.States;

namespace PumpFleet.Domain.Detection;

/// <summary>The per-pump detectors: each a pure function of the folded state (see docs/detection.md).</summary>
public static class Detectors
{
    private static readonly CultureInfo Inv = CultureInfo.InvariantCulture;

    /// <summary>
    /// <c>flow-stall</c>: no delivery while a rate is programmed. Any one signal suffices, so a full stall is found in
    /// the reporting interval in which it starts: the MOTOR_STALL alarm, delivery stopped for a stall, a motor
    /// status of stalled newer than the last normal delivery, or a dose report of (near) zero over an interval
    /// with a programmed volume. Resolved when none holds and a normal delivery was reported after opening.
    /// </summary>
    public static Verdict FlowStall(PumpState state, DateTimeOffset at)
    {
        const string kind = AnomalyKinds.FlowStall;
        var stall = state.Detectors.Stall;
        var alarm = state.TryGetAlarm("MOTOR_STALL", out var a) ? a : null;
        var stopped = DeliveryStates.IsStopped(state.DeliveryState) && state.StopReason == "stall";
        var motor = state.Motor == "stalled" && (stall.LastHealthyAt is null || state.StatusAt > stall.LastHealthyAt);
        var zero = stall.ConsecutiveZeroIntervals > 0;
        if (!(alarm is not null || stopped || motor || zero))
        {
            var open = state.AnomalyOfKind(kind);
            return open is not null && stall.LastHealthyAt > open.DetectedAt ? Verdict.Clear(kind) : Verdict.None(kind);
        }

        DateTimeOffset? since = null;
        void Earliest(DateTimeOffset? t)
        {
            if (t is { } v && (since is null || v < since))
            {
                since = v;
            }
        }

        Earliest(alarm?.RaisedAt);
        Earliest(stopped ? state.DeliveryStateAt : null);
        Earliest(motor ? state.StatusAt : null);
        Earliest(zero ? stall.ZeroSince : null);
        var hours = Math.Max(0, (at - (since ?? at)).TotalHours);
        var rate = ProgrammedRate.DailyRate(state.Prescription);
        var signals = new List<string>();
        if (alarm is not null)
        {
            signals.Add("MOTOR_STALL alarm");
        }

        if (stopped)
        {
            signals.Add("delivery stopped for a stall");
        }

        if (motor)
        {
            signals.Add("motor status stalled");
        }

        if (zero)
        {
            signals.Add(string.Create(Inv, $"{stall.ConsecutiveZeroIntervals} dose report(s) of no delivery"));
        }

        var summary = string.Create(Inv, $"No delivery while {rate:0.###} mL/day is programmed ({string.Join(", ", signals)}), for {hours:0.#} h");
        if (hours > 48)
        {
            summary += "; a stall over 48 h is a risk factor for later over-infusion";
        }

        // A stall is the pump's own critical alarm (§2.1) and stops the drug: withdrawal risk.
        return Verdict.Found(kind, "critical", summary + ".", new Dictionary<string, double>(StringComparer.Ordinal)
        {
            ["stallHours"] = Math.Round(hours, 2),
            ["programmedRateMlPerDay"] = rate,
            ["zeroDeliveryIntervals"] = stall.ConsecutiveZeroIntervals,
            ["missingVolumeMl"] = Math.Round(stall.MissingMl, 4),
            ["motorStallAlarm"] = alarm is null ? 0 : 1,
            ["stoppedForStall"] = stopped ? 1 : 0,
            ["motorStalled"] = motor ? 1 : 0,
        });
    }

    /// <summary>
    /// <c>over-infusion</c> / <c>under-infusion</c>: observed consumption (measured levels; and the aspirated
    /// residual over a refill cycle) against the motor's delivered volume, outside the accuracy band.
    /// Sensor pumps: a two-sided CUSUM (see <see cref="FlowCusum"/>) crossing the decision interval, with the run's
    /// relative deviation beyond the band. Every pump: at a refill, (expected − aspirated) / motor volume of the
    /// cycle beyond the band and the minimum discrepancy.
    /// </summary>
    public static Verdict Flow(PumpState state, AnomalyDetectionOptions o, bool over)
    {
        var kind = over ? AnomalyKinds.OverInfusion : AnomalyKinds.UnderInfusion;
        var flow = state.Detectors.FlowForReading;
        var refill = state.Detectors.Refill;
        var open = state.AnomalyOfKind(kind);
        var noise = o.LevelNoiseMl(flow.NoiseCount, flow.NoiseVariance);

        // The CUSUM's noise: two end points of the EWMA, each with variance σ²·λ/(2−λ).
        var cusumSd = noise * Math.Sqrt(2 * FlowCusum.Lambda / (2 - FlowCusum.Lambda));
        var s = over ? flow.Over : flow.Under;
        var run = over ? flow.OverRun : flow.UnderRun;
        var sigmas = s / cusumSd;
        var deviation = run.RelativeDeviation ?? 0;
        var critical = over || DrugName.IsWithdrawalCritical(state.Prescription?.Drug);
        var severity = critical ? "critical" : "warning";
        if (flow.TotalReadings >= o.FlowMinReadings && sigmas > o.FlowCusumThresholdSigmas && deviation > o.AccuracyBandFraction)
        {
            var days = run.StartedAt is { } st && run.LastAt is { } lt ? (lt - st).TotalDays : 0;
            var summary = string.Create(Inv,
                $"Measured reservoir levels show {deviation:P0} {(over ? "more" : "less")} consumption than the motor reported over {days:0.#} days ({run.Readings} readings; accuracy band ±{o.AccuracyBandFraction:P1})");
            var empty = !over && state.Ledger.MeasuredMl is { } lastLevel && lastLevel <= 2 * noise;
            summary += empty
                ? string.Create(Inv, $"; the reservoir measures empty ({state.Ledger.MeasuredMl:0.##} mL): the motor runs dry.")
                : ".";
            return Verdict.Found(kind, severity, summary, new Dictionary<string, double>(StringComparer.Ordinal)
            {
                ["relativeDeviation"] = Math.Round((over ? 1 : -1) * deviation, 4),
                ["observedMl"] = Math.Round(run.DeliveredMl + ((over ? 1 : -1) * run.ExcessMl), 4),
                ["deliveredMl"] = Math.Round(run.DeliveredMl, 4),
                ["programmedMl"] = Math.Round(run.ProgrammedMl, 4),
                ["cusumMl"] = Math.Round(s, 4),
                ["cusumSigmas"] = Math.Round(sigmas, 2),
                ["thresholdSigmas"] = o.FlowCusumThresholdSigmas,
                ["levelNoiseSdMl"] = Math.Round(noise, 4),
                ["readings"] = run.Readings,
                ["runDays"] = Math.Round(days, 2),
                ["accuracyBand"] = o.AccuracyBandFraction,
                ["source"] = 0,   // 0 = measured levels, 1 = refill residual
                ["lastMeasuredMl"] = state.Ledger.MeasuredMl ?? -1,
                ["reservoirEmpty"] = empty ? 1 : 0,
            }, flow.LastAt);
        }

        // The refill residual is the observed flow of a whole cycle (§3.3): a one-shot finding per refill.
        if (refill.CycleDeliveredMl is { } cycle && cycle > 0 && refill.LastRefillAt is { } refillAt
            && (state.Detectors.LastOpened(kind) is not { } lastOpened || refillAt > lastOpened))
        {
            var disc = refill.ResidualDiscrepancyMl;
            var rel = disc / cycle;
            if ((over ? disc : -disc) > o.RefillMinDiscrepancyMl && (over ? rel : -rel) > o.AccuracyBandFraction)
            {
                var summary = string.Create(Inv,
                    $"At the refill the aspirated residual was {refill.AspiratedResidualMl:0.##} mL against {refill.ExpectedResidualMl:0.##} mL expected: {Math.Abs(rel):P0} {(over ? "more" : "less")} than the {cycle:0.##} mL the motor delivered over the cycle (accuracy band ±{o.AccuracyBandFraction:P1}).");
                return Verdict.Found(kind, severity, summary, new Dictionary<string, double>(StringComparer.Ordinal)
                {
                    ["relativeDeviation"] = Math.Round(rel, 4),
                    ["expectedResidualMl"] = refill.ExpectedResidualMl,
                    ["aspiratedResidualMl"] = refill.AspiratedResidualMl,
                    ["cycleDeliveredMl"] = Math.Round(cycle, 4),
                    ["cycleDays"] = Math.Round(refill.CycleDays ?? 0, 2),
                    ["accuracyBand"] = o.AccuracyBandFraction,
                    ["source"] = 1,
                }, refillAt);
            }
        }

        if (open is null)
        {
            return Verdict.None(kind);
        }

        // Cleared: a week of readings since opening without the CUSUM rising again, or an in-band refill since.
        var quietSensor = flow.LastAt is { } last && last - open.DetectedAt >= o.FlowResolveAfter && sigmas < 1;
        var inBandRefill = refill.LastRefillAt > open.DetectedAt && refill.CycleDeliveredMl is > 0
            && Math.Abs(refill.ResidualDiscrepancyMl / refill.CycleDeliveredMl.Value) <= o.AccuracyBandFraction
            && sigmas < o.FlowCusumThresholdSigmas;
        return quietSensor || inBandRefill ? Verdict.Clear(kind) : Verdict.None(kind);
    }

    /// <summary>
    /// <c>refill-discrepancy</c>: expected versus aspirated residual at a refill beyond the band, or beyond
    /// 1 mL (20 mL pump) / 2 mL (40 mL pump) — a possible pocket fill [69]; or, with a fill-level sensor, the first
    /// measured level after a refill short of the injected volume by that much. Resolved by a later in-band refill.
    /// </summary>
    public static Verdict RefillDiscrepancy(PumpState state, AnomalyDetectionOptions o)
    {
        const string kind = AnomalyKinds.RefillDiscrepancy;
        var r = state.Detectors.Refill;
        if (r.LastRefillAt is not { } refillAt)
        {
            return Verdict.None(kind);
        }

        var capacity = state.Device?.ReservoirCapacityMl ?? 40;
        var pocket = o.PocketFillThresholdMl(capacity);
        var lastOpened = state.Detectors.LastOpened(kind);

        // Sensor: the reservoir holds less than was injected, right after the refill.
        if (r.FillDeficitMl is { } deficit && r.FirstMeasuredAt is { } firstAt && firstAt - refillAt <= o.PostRefillCheckWindow
            && deficit > pocket && (lastOpened is null || firstAt > lastOpened))
        {
            var summary = string.Create(Inv,
                $"Possible pocket fill: {(firstAt - refillAt).TotalHours:0.#} h after a refill of {r.AddedMl:0.##} mL the reservoir measured {r.FirstMeasuredMl:0.##} mL, {deficit:0.##} mL short (threshold {pocket:0.#} mL for a {capacity:0} mL pump).");
            return Verdict.Found(kind, "critical", summary, new Dictionary<string, double>(StringComparer.Ordinal)
            {
                ["possiblePocketFill"] = 1,
                ["addedMl"] = r.AddedMl,
                ["firstMeasuredMl"] = r.FirstMeasuredMl ?? 0,
                ["fillDeficitMl"] = Math.Round(deficit, 4),
                ["thresholdMl"] = pocket,
                ["capacityMl"] = capacity,
                ["hoursAfterRefill"] = Math.Round((firstAt - refillAt).TotalHours, 2),
            }, firstAt);
        }

        var disc = r.ResidualDiscrepancyMl;
        var rel = r.CycleDeliveredMl is > 0 ? disc / r.CycleDeliveredMl.Value : (double?)null;
        var beyondPocket = Math.Abs(disc) > pocket;
        var beyondBand = Math.Abs(disc) > o.RefillMinDiscrepancyMl && rel is { } x && Math.Abs(x) > o.AccuracyBandFraction;
        if ((beyondPocket || beyondBand) && (lastOpened is null || refillAt > lastOpened))
        {
            // Less came back than expected: the drug went somewhere else (pocket, over-infusion, withdrawal from the pump, §3.5).
            var pocketFill = beyondPocket && disc > 0;
            var summary = string.Create(Inv,
                $"Refill residual: {r.AspiratedResidualMl:0.##} mL aspirated against {r.ExpectedResidualMl:0.##} mL expected ({disc:+0.##;-0.##} mL");
            summary += rel is { } rr ? string.Create(Inv, $", {rr:P0} of the cycle's delivered volume)") : ")";
            summary += pocketFill
                ? string.Create(Inv, $": beyond {pocket:0.#} mL for a {capacity:0} mL pump, a possible pocket fill (or over-infusion).")
                : beyondPocket
                    ? string.Create(Inv, $": more came back than expected, beyond {pocket:0.#} mL (under-infusion or catheter occlusion?).")
                    : string.Create(Inv, $": outside the ±{o.AccuracyBandFraction:P1} accuracy band.");
            return Verdict.Found(kind, pocketFill ? "critical" : "warning", summary, new Dictionary<string, double>(StringComparer.Ordinal)
            {
                ["possiblePocketFill"] = pocketFill ? 1 : 0,
                ["expectedResidualMl"] = r.ExpectedResidualMl,
                ["aspiratedResidualMl"] = r.AspiratedResidualMl,
                ["discrepancyMl"] = Math.Round(disc, 4),
                ["relativeToCycle"] = Math.Round(rel ?? 0, 4),
                ["cycleDeliveredMl"] = Math.Round(r.CycleDeliveredMl ?? 0, 4),
                ["thresholdMl"] = pocket,
                ["capacityMl"] = capacity,
                ["accuracyBand"] = o.AccuracyBandFraction,
            }, refillAt);
        }

        var open = state.AnomalyOfKind(kind);
        return open is not null && refillAt > open.DetectedAt && !beyondPocket && !beyondBand
               && !(r.FillDeficitMl > pocket)
            ? Verdict.Clear(kind)
            : Verdict.None(kind);
    }

    /// <summary>
    /// <c>depletion-risk</c>: the platform's ledger (not the pump's computed alarm, §0 item 1) projects the
    /// level below the low-reservoir threshold within the horizon, at the fastest of the programmed, motor and
    /// measured consumption. Critical for baclofen (withdrawal in 24–72 h, §3.7), within the critical horizon, or
    /// already below. Resolved when the projection is beyond 1.5 × the horizon (hysteresis against noise). With an open
    /// cohort flow correction (<see cref="PumpState.FlowCorrection"/>) the ledger's level and rates take the cohort's
    /// factor when that brings the threshold closer, and the summary and evidence say so.
    /// </summary>
    public static Verdict DepletionRisk(PumpState state, AnomalyDetectionOptions o, DateTimeOffset at)
    {
        const string kind = AnomalyKinds.DepletionRisk;
        var ledger = state.Ledger;
        if (ledger.EstimatedMl is not { } ledgerLevel || ledger.BaselineAt is not { } baselineAt || TherapyPhases.IsExplanted(state.Phase))
        {
            return Verdict.None(kind);
        }

        var programmed = state.ForecastRateMlPerDay;
        var sinceBaseline = (at - baselineAt).TotalDays;
        var deliveredRate = sinceBaseline >= 1 ? ledger.DeliveredSinceBaselineMl / sinceBaseline : 0;
        double measuredRate = 0;
        double? measuredLevel = null;
        if (ledger.MeasuredMl is { } m && ledger.MeasuredAt is { } mAt && mAt >= baselineAt && ledger.BaselineMl is { } b)
        {
            var span = (mAt - baselineAt).TotalDays;
            if (span >= 1)
            {
                measuredRate = Math.Max(0, (b - m) / span);
            }

            measuredLevel = m - (Math.Max(measuredRate, programmed) * Math.Max(0, (at - mAt).TotalDays));
        }

        if (DeliveryStates.IsStopped(state.DeliveryState) || Math.Max(programmed, Math.Max(deliveredRate, measuredRate)) <= 0)
        {
            return Verdict.None(kind);
        }

        // Silence is not health: evaluated later than the ledger's last word (a re-evaluation on time, no new data),
        // the reservoir kept emptying at the rate in the meantime.
        var ledgerAt = ledger.ProgrammedIntegratedTo ?? state.LastEventAt ?? at;
        var silentDays = Math.Max(0, (at - ledgerAt).TotalDays);
        var threshold = state.LowReservoirThresholdMl;

        // The ledger's projection, at a flow factor f for the motor-based parts: the motor volume since the refill
        // × (f − 1) is already gone, and the ledger rates run f times faster. Measured levels and rates are real
        // consumption already, so they are never scaled.
        (double Level, double LedgerLevel, double Rate, double Days) Project(double f)
        {
            var r = Math.Max(Math.Max(programmed, deliveredRate) * f, measuredRate);
            var l = Math.Max(0, ledgerLevel - (Math.Max(0, ledger.DeliveredSinceBaselineMl) * (f - 1)) - (r * silentDays));
            var lv = Math.Min(l, measuredLevel ?? double.MaxValue);
            return (lv, l, r, Math.Max(0, (lv - threshold) / r));
        }

        var plain = Project(1);
        var correction = state.FlowCorrection?.ToCorrection();

        // A cohort's factor (open cohort-flow-deviation) may bring the alert forward, never put it off: an
        // under-infusing cohort keeps the programmed-rate projection.
        var corrected = correction is null ? plain : Project(correction.Factor);
        var useCorrection = correction is not null && corrected.Days < plain.Days;
        var (level, ledgerNow, rate, days) = useCorrection ? corrected : plain;
        var horizon = o.DepletionHorizon.TotalDays;
        if (days > horizon)
        {
            var open = state.AnomalyOfKind(kind);
            return open is not null && days > 1.5 * horizon ? Verdict.Clear(kind) : Verdict.None(kind);
        }

        var baclofen = DrugName.IsWithdrawalCritical(state.Prescription?.Drug);
        var critical = baclofen || days <= o.DepletionCriticalHorizon.TotalDays || level <= threshold;
        var summary = level <= threshold
            ? string.Create(Inv, $"The platform's ledger puts the reservoir at {level:0.##} mL, at or below the {threshold:0.#} mL low-reservoir level")
            : string.Create(Inv, $"The platform's ledger projects the reservoir ({level:0.##} mL) below the {threshold:0.#} mL low-reservoir level in {days * 24:0} h at {rate:0.###} mL/day");
        if (useCorrection)
        {
            summary += string.Create(Inv,
                $", corrected by {correction!.Cohort}'s flow factor {correction.Factor:0.000} (cohort-flow-deviation {correction.AnomalyId}; at the programmed rate: {(plain.Level <= threshold ? "already below" : $"{plain.Days * 24:0} h")})");
        }

        summary += baclofen ? "; baclofen withdrawal can progress within 24–72 h." : ".";
        var evidence = new Dictionary<string, double>(StringComparer.Ordinal)
        {
            ["levelMl"] = Math.Round(level, 4),
            ["ledgerLevelMl"] = Math.Round(ledgerNow, 4),
            ["measuredLevelMl"] = Math.Round(measuredLevel ?? -1, 4),
            ["thresholdMl"] = threshold,
            ["hoursToThreshold"] = Math.Round(days * 24, 1),
            ["rateMlPerDay"] = Math.Round(rate, 4),
            ["programmedRateMlPerDay"] = Math.Round(programmed, 4),
            ["deliveredRateMlPerDay"] = Math.Round(deliveredRate, 4),
            ["measuredRateMlPerDay"] = Math.Round(measuredRate, 4),
            ["baclofen"] = baclofen ? 1 : 0,
            ["hoursWithoutData"] = Math.Round(silentDays * 24, 1),
            ["flowCorrected"] = useCorrection ? 1 : 0,
        };
        if (useCorrection)
        {
            // The cohort and the source anomaly are in the summary (evidence is numbers only).
            evidence["cohortFlowFactor"] = Math.Round(correction!.Factor, 4);
            evidence["uncorrectedHoursToThreshold"] = Math.Round(plain.Days * 24, 1);
        }

        return Verdict.Found(kind, critical ? "critical" : "warning", summary, evidence);
    }

    /// <summary>
    /// <c>battery-end-of-life</c>: END_OF_SERVICE or LOW_BATTERY_RESET (critical: the pump stops or its rate resets,
    /// §2.1), ELECTIVE_REPLACEMENT (warning: EOS in at least 90 days, §0 item 5), or the battery trend projecting
    /// 0 % within the forecast horizon (info).
    /// </summary>
    public static Verdict BatteryEndOfLife(PumpState state, AnomalyDetectionOptions o) => BatteryEndOfLife(state, o, null);

    /// <summary>As above, the forecast advanced to <paramref name="at"/> (a re-evaluation on time: the battery kept discharging while silent).</summary>
    public static Verdict BatteryEndOfLife(PumpState state, AnomalyDetectionOptions o, DateTimeOffset? at)
    {
        const string kind = AnomalyKinds.BatteryEndOfLife;
        var trend = state.Detectors.Battery;
        var fit = trend.Reports >= o.BatteryMinReports ? trend.Fit() : null;
        var elapsed = at is { } now && trend.LastAt is { } last ? Math.Max(0, (now - last).TotalDays) : 0;
        double? daysToEmpty = fit is { SlopePerDay: < 0 } f ? Math.Max(0, (f.LevelPct / -f.SlopePerDay) - elapsed) : null;
        var evidence = new Dictionary<string, double>(StringComparer.Ordinal)
        {
            ["batteryPct"] = state.BatteryPct ?? -1,
            ["slopePctPerDay"] = Math.Round(fit?.SlopePerDay ?? 0, 5),
            ["forecastDaysToEmpty"] = Math.Round(daysToEmpty ?? -1, 1),
            ["reports"] = trend.Reports,
        };
        foreach (var code in new[] { "END_OF_SERVICE", "LOW_BATTERY_RESET" })
        {
            if (state.TryGetAlarm(code, out var alarm))
            {
                evidence["alarmRaisedAtUnixSeconds"] = alarm.RaisedAt.ToUnixTimeSeconds();
                var what = code == "END_OF_SERVICE" ? "End of Service: the pump has stopped delivering" : "Low Battery Reset: the flow rate may have been reset to a very low level";
                return Verdict.Found(kind, "critical", $"{what} (battery {state.BatteryPct?.ToString("0.#", Inv) ?? "unknown"} %).", evidence, alarm.RaisedAt);
            }
        }

        if (state.TryGetAlarm("ELECTIVE_REPLACEMENT", out var eri))
        {
            evidence["alarmRaisedAtUnixSeconds"] = eri.RaisedAt.ToUnixTimeSeconds();
            var daysSinceEri = trend.LastAt is { } lt ? Math.Max(0, (lt - eri.RaisedAt).TotalDays) : 0;
            evidence["daysSinceEri"] = Math.Round(daysSinceEri, 1);
            return Verdict.Found(kind, "warning", string.Create(Inv,
                $"Elective Replacement Indicator since {eri.RaisedAt:yyyy-MM-dd}: End of Service follows in at least 90 days (by {eri.RaisedAt.AddDays(90):yyyy-MM-dd} at the earliest); plan the replacement."), evidence, eri.RaisedAt);
        }

        if (daysToEmpty is { } d && d <= o.BatteryForecastHorizon.TotalDays)
        {
            return Verdict.Found(kind, "info", string.Create(Inv,
                $"Battery trend ({fit!.Value.SlopePerDay:0.###} %/day from {state.BatteryPct:0.#} %) projects End of Service in about {d:0} days."), evidence);
        }

        var open = state.AnomalyOfKind(kind);
        return open is not null && (daysToEmpty is null || daysToEmpty > 1.2 * o.BatteryForecastHorizon.TotalDays)
            ? Verdict.Clear(kind)
            : Verdict.None(kind);
    }

    /// <summary><c>silent</c> is opened by the fleet monitor; it clears as soon as the pump is heard from again.</summary>
    public static Verdict SilentCleared(PumpState state)
    {
        const string kind = AnomalyKinds.Silent;
        var open = state.AnomalyOfKind(kind);
        if (open is null || state.LastSeenAt is not { } seen)
        {
            return Verdict.None(kind);
        }

        var lastSeenBefore = open.Evidence.TryGetValue("lastSeenAtUnixSeconds", out var v) ? v : double.MaxValue;
        return seen.ToUnixTimeSeconds() > lastSeenBefore ? Verdict.Clear(kind) : Verdict.None(kind);
    }
}
