using PumpFleet.Contracts.Events;
using PumpFleet.Contracts.Views;
using PumpFleet.Domain.Pumps;
using PumpFleet.Domain.States;
using static PumpFleet.Grains.Tests.Ev;

namespace PumpFleet.Grains.Tests;

public sealed class PumpStateTests
{
    [Fact]
    public void Apply_PlatformEvents_SetDeviceHubGapsAndAnomalies()
    {
        var s = Fold([
            new PumpPaired { At = T0, HubId = "H1", By = "ops" },
            new DeviceIdentified { At = T0, Device = Device40 },
            new GapRecorded { At = T0, FromSeq = 3, ToSeq = 5 },
            new AnomalyDetected { At = T0, AnomalyId = "a1", Kind = "flow-stall", Severity = "critical", Summary = "stall", Evidence = new Dictionary<string, double> { ["hours"] = 2 } },
            new AnomalyDetected { At = T0, AnomalyId = "a2", Kind = "silent", Severity = "warning", Summary = "silent", Evidence = new Dictionary<string, double>() },
            new AnomalyAcknowledged { At = T0.AddHours(1), AnomalyId = "a1", By = "dr.x", Note = "looking" },
            new AnomalyResolved { At = T0.AddHours(2), AnomalyId = "a2", By = "system", Automatic = true },
        ]);

        Assert.Equal("H1", s.HubId);
        Assert.Equal(Device40, s.Device);
        // No seq is stored, so 1 and 2 are as missing as the recorded 3..5.
        Assert.Equal([new SeqRange(1, 5)], s.Seqs.Missing);
        var a1 = Assert.Single(s.Anomalies.Values);
        Assert.Equal(("a1", "acknowledged", "dr.x"), (a1.Id, a1.Status.ToWire(), a1.AcknowledgedBy));
        Assert.Equal(PumpStatuses.Critical, s.Status);
        Assert.Equal(7, s.Version);
    }

    [Fact]
    public void Apply_TherapyPrescriptionDeliveryStatusPain_SetFields()
    {
        var s = Fold([
            new TherapyPhaseChanged { Seq = 1, At = T0, Phase = "trial-continuous", Indication = "spasticity" },
            new TherapyPhaseChanged { Seq = 2, At = T0.AddDays(3), Phase = "implanted" },
            Continuous(3, T0.AddDays(3), 0.5),
            new DeliveryStateChanged { Seq = 4, At = T0.AddDays(4), State = "stopped", Reason = "mri" },
            new StatusReported { Seq = 5, At = T0.AddDays(4), BatteryPct = 81, BatteryV = 3.1, TempC = 36.9, Motor = "stopped" },
            new PainReported { Seq = 6, At = T0.AddDays(4), Score = 3 },
            new BolusRequested { Seq = 7, At = T0.AddDays(4), Granted = false, Reason = "lockout" },
        ]);

        Assert.Equal("implanted", s.Phase);
        Assert.Equal("spasticity", s.Indication);
        Assert.Equal(0.5, s.Prescription!.RateMlPerDay);
        Assert.Equal(("stopped", "mri"), (s.DeliveryState, s.StopReason));
        Assert.Equal((81d, 3.1d, 36.9d, "stopped"), (s.BatteryPct!.Value, s.BatteryV!.Value, s.TempC!.Value, s.Motor));
        Assert.Equal(3, s.LastPainScore);
        Assert.Equal(7, s.LastSeq);
        Assert.Equal(PumpStatuses.Stopped, s.Status);
    }

    [Fact]
    public void Apply_AlarmRaisedAndCleared_TracksActiveAlarms_AndLateOlderRaiseDoesNotReopen()
    {
        var s = Fold([
            new AlarmRaised { Seq = 1, At = T0, Code = "LOW_RESERVOIR", Severity = "non-critical" },
            new AlarmRaised { Seq = 2, At = T0.AddMinutes(5), Code = "MOTOR_STALL", Severity = "critical" },
            new AlarmCleared { Seq = 3, At = T0.AddHours(1), Code = "MOTOR_STALL" },
        ]);
        Assert.Equal(["LOW_RESERVOIR"], s.ActiveAlarms.Keys);
        Assert.Equal(PumpStatuses.Attention, s.Status);

        // seq 0.5-style late arrival: an older raise of a cleared alarm (filled gap) must not reopen it.
        s.Apply(new AlarmRaised { Seq = 10, At = T0.AddMinutes(30), Code = "MOTOR_STALL", Severity = "critical" }, new EventEnvelope(4, 10, T0.AddDays(1), false));
        Assert.DoesNotContain("MOTOR_STALL", s.ActiveAlarms.Keys);
    }

    [Fact]
    public void Ledger_AcrossRefills_TracksProgrammedDeliveredMeasuredAndDiscrepancy()
    {
        var t = T0;
        var s = Fold([
            Continuous(1, t, 1.0),
            Refill(2, t, added: 20),
            Dose(3, t, t.AddDays(5), 5.0),
            Level(4, t.AddDays(5), 14.6),
            Dose(5, t.AddDays(5), t.AddDays(10), 5.0),
            Refill(6, t.AddDays(10), added: 18, expected: 10, aspirated: 9.2),
            Dose(7, t.AddDays(10), t.AddDays(12), 2.0),
        ]);

        var l = s.Ledger;
        Assert.Equal(2, l.Refills);
        Assert.Equal(18, l.BaselineMl);
        Assert.Equal(2.0, l.DeliveredSinceBaselineMl, 6);
        Assert.Equal(2.0, l.ProgrammedSinceBaselineMl, 6);
        Assert.Equal(12.0, l.ProgrammedTotalMl, 6);
        Assert.Equal(12.0, l.DeliveredTotalMl, 6);
        Assert.Equal(16.0, l.EstimatedMl!.Value, 6);
        Assert.Equal(0.8, l.LastRefillDiscrepancyMl!.Value, 6);
        Assert.Equal(14.6, l.MeasuredMl);

        // Forecast: 16 mL at 1 mL/day from day 12 → empty at day 28; low-reservoir (4 mL) due at day 24.
        var view = s.ToView();
        Assert.Equal(t.AddDays(28), view.ForecastEmptyAt);
        Assert.Equal(t.AddDays(24), view.NextRefillDueAt);
        Assert.Equal(16.0, view.ReservoirMl);
    }

    [Fact]
    public void Ledger_StoppedDelivery_ProgramsNothing()
    {
        var t = T0;
        var s = Fold([
            Continuous(1, t, 2.0),
            Refill(2, t, 20),
            new DeliveryStateChanged { Seq = 3, At = t.AddDays(1), State = "stopped", Reason = "clinician" },
            new StatusReported { Seq = 4, At = t.AddDays(3) },
            new DeliveryStateChanged { Seq = 5, At = t.AddDays(3), State = "running" },
            new StatusReported { Seq = 6, At = t.AddDays(4) },
        ]);

        Assert.Equal(4.0, s.Ledger.ProgrammedTotalMl, 6);   // day 0–1 and day 3–4 at 2 mL/day
    }

    [Fact]
    public void Ledger_FirstReadingWithoutRefill_BecomesBaseline()
    {
        var s = Fold([Continuous(1, T0, 1), Level(2, T0, 12.5, "estimated"), Dose(3, T0, T0.AddDays(1), 1)]);
        Assert.Equal(11.5, s.Ledger.EstimatedMl!.Value, 6);
        Assert.Equal(12.5, s.Ledger.PumpEstimatedMl);
        Assert.Null(s.ToView().Ledger.LastRefillAt);
    }

    [Fact]
    public void ProgrammedRate_FlexSchedule_IntegratesPiecewiseAcrossMidnight()
    {
        var rx = new PrescriptionSet
        {
            Seq = 1, At = T0, Drug = "baclofen", Concentration = new Concentration { Value = 2000, Unit = "mcg/mL" }, Mode = "flex",
            Schedule = [new FlexStep { Start = "06:00", RateMlPerDay = 1.2 }, new FlexStep { Start = "22:00", RateMlPerDay = 0.6 }],
        };

        // 16 h at 1.2 + 8 h at 0.6 = (0.8 + 0.2) mL per day.
        Assert.Equal(1.0, ProgrammedRate.DailyRate(rx), 9);
        // 20:00 → 02:00 next day: 2 h at 1.2 + 4 h at 0.6.
        Assert.Equal((2 * 1.2 / 24) + (4 * 0.6 / 24), ProgrammedRate.Integrate(rx, T0.AddHours(20), T0.AddHours(26)), 9);
        Assert.Equal(0.6, ProgrammedRate.RateAt(rx, T0.AddHours(3)));
        Assert.Equal(1.2, ProgrammedRate.RateAt(rx, T0.AddHours(6)));
    }

    [Fact]
    public void Apply_LateEventInGap_FillsGap_AndKeepsLastSeq()
    {
        var s = Fold([Dose(1, T0, T0.AddHours(1), 0.04), new GapRecorded { At = T0, FromSeq = 2, ToSeq = 4 }, Dose(5, T0.AddHours(4), T0.AddHours(5), 0.04)]);
        Assert.True(s.HasSeq(1));
        Assert.False(s.HasSeq(3));

        s.Apply(Dose(3, T0.AddHours(2), T0.AddHours(3), 0.04), new EventEnvelope(4, 3, T0.AddDays(1), false));

        Assert.Equal([new SeqRange(2, 2), new SeqRange(4, 4)], s.Seqs.Missing);
        Assert.Equal(5, s.LastSeq);
        Assert.True(s.HasSeq(3));
        Assert.Equal(0.12, s.Ledger.DeliveredTotalMl, 9);
    }

    [Fact]
    public void Apply_ClockSuspectEvent_DoesNotMoveEventTimeOrProgrammedLedger()
    {
        var s = Fold([Continuous(1, T0, 1), Refill(2, T0, 20)]);
        s.Apply(new StatusReported { Seq = 3, At = new DateTimeOffset(2008, 1, 1, 0, 0, 0, TimeSpan.Zero), BatteryPct = 70 }, new EventEnvelope(3, 3, T0.AddDays(1), ClockSuspect: true));

        Assert.Equal(T0, s.LastEventAt);
        Assert.Equal(0, s.Ledger.ProgrammedTotalMl);
        Assert.Equal(3, s.LastSeq);
        Assert.Equal(T0, s.LastDeviceAt);
    }

    [Fact]
    public void Snapshot_RoundTrip_GivesIdenticalState()
    {
        var s = Fold([
            new PumpPaired { At = T0, HubId = "H1" }, new DeviceIdentified { At = T0, Device = Device20 },
            Continuous(1, T0, 0.7), Refill(2, T0, 19), Dose(3, T0, T0.AddDays(1), 0.7),
            new AlarmRaised { Seq = 4, At = T0.AddDays(1), Code = "LOW_RESERVOIR", Severity = "non-critical" },
            new GapRecorded { At = T0, FromSeq = 5, ToSeq = 6 }, Level(7, T0.AddDays(1), 18.2),
        ]);

        var json = System.Text.Json.JsonSerializer.Serialize(s, SnapshotJson.Options);
        var back = System.Text.Json.JsonSerializer.Deserialize<PumpState>(json, SnapshotJson.Options)!;

        Assert.Equal(json, System.Text.Json.JsonSerializer.Serialize(back, SnapshotJson.Options));
        Assert.Equal(System.Text.Json.JsonSerializer.Serialize(s.ToView()), System.Text.Json.JsonSerializer.Serialize(back.ToView()));
    }

    [Fact]
    public void Snapshot_OfAPumpWithoutAlarmsOrAnomalies_KeepsItsShape()
    {
        // The dictionaries are allocated at their first entry only (issue 15, memory per pump); a snapshot still
        // writes them as {} (older builds read it), and one read back behaves as a pump that never had any.
        var s = Fold([new PumpPaired { At = T0, HubId = "H1" }, Continuous(1, T0, 0.5), Dose(2, T0, T0.AddDays(1), 0.5)]);

        var json = System.Text.Json.JsonSerializer.Serialize(s, SnapshotJson.Options);
        Assert.Contains("\"activeAlarms\":{}", json, StringComparison.Ordinal);
        Assert.Contains("\"alarmChangedAt\":{}", json, StringComparison.Ordinal);
        Assert.Contains("\"anomalies\":{}", json, StringComparison.Ordinal);
        Assert.DoesNotContain("anomalyRecords", json, StringComparison.Ordinal);   // the non-allocating readers are not state
        Assert.DoesNotContain("hasActiveAlarms", json, StringComparison.Ordinal);
        var back = System.Text.Json.JsonSerializer.Deserialize<PumpState>(json, SnapshotJson.Options)!;
        Assert.False(back.HasActiveAlarms);
        Assert.Empty(back.AnomalyRecords);
        Assert.Null(back.AnomalyOfKind("silent"));
        Assert.Equal(PumpStatuses.Ok, back.Status);
        Assert.Equal(json, System.Text.Json.JsonSerializer.Serialize(back, SnapshotJson.Options));

        // An alarm raised and cleared again leaves an empty dictionary behind: the same snapshot as never raised.
        back.Apply(new AlarmRaised { Seq = 3, At = T0.AddDays(1), Code = "LOW_RESERVOIR", Severity = "non-critical" }, new EventEnvelope(4, 3, T0.AddDays(1), false));
        Assert.True(back.HasActiveAlarms);
        Assert.True(back.TryGetAlarm("LOW_RESERVOIR", out var alarm));
        Assert.Equal("non-critical", alarm.Severity);
        back.Apply(new AlarmCleared { Seq = 4, At = T0.AddDays(1).AddHours(1), Code = "LOW_RESERVOIR" }, new EventEnvelope(5, 4, T0.AddDays(1), false));
        Assert.False(back.HasActiveAlarms);
        Assert.False(back.TryGetAlarm("LOW_RESERVOIR", out _));
    }

    [Fact]
    public void Snapshot_OfAPumpOffZiconotide_KeepsItsShape_WithoutTheZiconotidePart()
    {
        // The ziconotide fields of RefillSafety live in an object allocated only when one of them is stored (issue 15,
        // memory per pump); the snapshot still writes them as before, and a pump never on ziconotide never allocates it.
        var s = Fold([new PumpPaired { At = T0, HubId = "H1" }, Continuous(1, T0, 0.5), Refill(2, T0, 19), Continuous(3, T0.AddDays(1), 0.6)]);
        var zicoPart = typeof(Domain.Detection.RefillSafety).GetField("_ziconotide", System.Reflection.BindingFlags.NonPublic | System.Reflection.BindingFlags.Instance)!;
        Assert.Null(zicoPart.GetValue(s.Detectors.Safety));
        Assert.Equal(2, s.Detectors.Safety.PrescriptionsSeen);

        var json = System.Text.Json.JsonSerializer.Serialize(s, SnapshotJson.Options);
        foreach (var field in new[] { "\"ziconotideFills\":0", "\"titrationStepMcgPerDay\":0", "\"titrationIncreasesInWeek\":0", "\"titrationFromMcgPerDay\":0", "\"titrationToMcgPerDay\":0", "\"refillConcentrationValue\":25" })
        {
            Assert.Contains(field, json, StringComparison.Ordinal);
        }

        Assert.DoesNotContain("ziconotideFillAt", json, StringComparison.Ordinal);
        Assert.DoesNotContain("ziconotideDoseMcgPerDay", json, StringComparison.Ordinal);
        var back = System.Text.Json.JsonSerializer.Deserialize<PumpState>(json, SnapshotJson.Options)!;
        Assert.Null(zicoPart.GetValue(back.Detectors.Safety));
        Assert.Equal(json, System.Text.Json.JsonSerializer.Serialize(back, SnapshotJson.Options));
    }

    [Fact]
    public void Snapshot_OfAPumpWithoutMeasuredLevels_WritesTheFlowCusum_WithoutAllocatingIt()
    {
        // The flow CUSUM is allocated at the first measured level only (issue 15, memory per pump); the snapshot
        // writes the never-started CUSUM as before, and a read-back pump still has none of its own.
        var s = Fold([new PumpPaired { At = T0, HubId = "H1" }, Continuous(1, T0, 0.5), Refill(2, T0, 19), Dose(3, T0, T0.AddHours(1), 0.02), Level(4, T0.AddHours(1), 18.9, "estimated")]);
        var own = typeof(Domain.Detection.DetectorState).GetField("_flow", System.Reflection.BindingFlags.NonPublic | System.Reflection.BindingFlags.Instance)!;
        Assert.Null(own.GetValue(s.Detectors));
        Assert.True(s.Detectors.FlowForReading.IsNeverStarted);

        var json = System.Text.Json.JsonSerializer.Serialize(s, SnapshotJson.Options);
        Assert.Contains("\"flow\":{\"segmentRefills\":-1,", json, StringComparison.Ordinal);
        var back = System.Text.Json.JsonSerializer.Deserialize<PumpState>(json, SnapshotJson.Options)!;
        Assert.Null(own.GetValue(back.Detectors));
        Assert.Equal(json, System.Text.Json.JsonSerializer.Serialize(back, SnapshotJson.Options));

        // A measured level starts this pump's own; its snapshot round-trips it.
        back.Apply(Level(5, T0.AddHours(2), 18.8), new EventEnvelope(6, 5, T0.AddHours(2), false));
        Assert.NotNull(own.GetValue(back.Detectors));
        Assert.Equal(1, back.Detectors.FlowForReading.TotalReadings);
        Assert.True(new Domain.Detection.DetectorState().FlowForReading.IsNeverStarted);   // the shared one is untouched
        var again = System.Text.Json.JsonSerializer.Serialize(back, SnapshotJson.Options);
        var backAgain = System.Text.Json.JsonSerializer.Deserialize<PumpState>(again, SnapshotJson.Options)!;
        Assert.Equal(1, backAgain.Detectors.FlowForReading.TotalReadings);
        Assert.Equal(again, System.Text.Json.JsonSerializer.Serialize(backAgain, SnapshotJson.Options));
    }

    [Fact]
    public void Prescription_IsKeptWithSharedValues_EqualToTheEvent_AndFoldedOnceBySafety()
    {
        // Two pumps' prescriptions parsed from two messages: distinct string instances with equal values.
        PrescriptionSet Rx(long seq, DateTimeOffset at) => new()
        {
            Seq = seq, At = at, Drug = new string("morphine".AsSpan()), Mode = new string("continuous".AsSpan()), RateMlPerDay = 0.5,
            Concentration = new Concentration { Value = 25, Unit = new string("mg/mL".AsSpan()) },
        };
        var rx1 = Rx(1, T0);
        var a = Fold([rx1], serial: "P1");
        var b = Fold([Rx(1, T0)], serial: "P2");

        Assert.Equal(rx1, a.Prescription);
        Assert.Same(a.Prescription!.Drug, b.Prescription!.Drug);
        Assert.Same(a.Prescription.Mode, b.Prescription.Mode);
        Assert.Same(a.Prescription.Concentration, b.Prescription.Concentration);
        Assert.Equal(1, a.Detectors.Safety.PrescriptionsSeen);

        // A newer prescription is folded by the safety detector, a late older one is not (it is not in force).
        a.Apply(Rx(2, T0.AddDays(2)), new EventEnvelope(2, 2, T0.AddDays(2), false));
        a.Apply(Rx(3, T0.AddDays(1)), new EventEnvelope(3, 3, T0.AddDays(2), false));
        Assert.Equal(2, a.Detectors.Safety.PrescriptionsSeen);
        Assert.Equal(T0.AddDays(2), a.Prescription.At);
    }
}

