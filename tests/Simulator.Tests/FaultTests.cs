using PumpFleet.Contracts.Events;
using PumpFleet.Simulator.Faults;
using PumpFleet.Simulator.Generation;

namespace PumpFleet.Simulator.Tests;

public sealed class FaultTests
{
    private static SimulatorOptions WithSensors(int pumps, double days)
    {
        var o = TestFleet.Quiet(pumps, days);
        o.SensorFraction = 1;
        return o;
    }

    [Fact]
    public void EveryKind_IsWrittenToGroundTruth()
    {
        var o = TestFleet.Quiet(pumps: 12, days: 120);
        var scenario = """
        {
          "cohortDrift": [ { "firmware": "4.3.0", "kinds": ["full-stall"], "rateMultiplier": 2 } ],
          "faults": [
            { "kind": "full-stall", "pumpIndex": 0, "startAfterDays": 1 },
            { "kind": "intermittent-stall", "pumpIndex": 1, "startAfterDays": 1, "durationDays": 3 },
            { "kind": "under-infusion", "pumpIndex": 2, "startAfterDays": 1, "parameters": { "percent": 30 } },
            { "kind": "over-infusion", "pumpIndex": 3, "startAfterDays": 1, "parameters": { "percent": 20 } },
            { "kind": "pocket-fill", "pumpIndex": 4, "startAfterDays": 0 },
            { "kind": "wrong-concentration", "pumpIndex": 4, "startAfterDays": 0 },
            { "kind": "catheter-occlusion", "pumpIndex": 5, "startAfterDays": 1 },
            { "kind": "battery-failure", "pumpIndex": 6, "startAfterDays": 1 },
            { "kind": "silent-hub", "serial": "SIM-P000007", "startAfterDays": 2, "durationDays": 2 }
          ]
        }
        """;
        var outputs = TestFleet.Run(o, scenario);
        var truth = TestFleet.Truth(outputs);
        Assert.Equal(FaultKind.All.Order(StringComparer.Ordinal), truth.Select(t => t.Kind).Distinct().Order(StringComparer.Ordinal));
        foreach (var line in truth.Select(GroundTruthWriter.ToJson))
        {
            using var doc = System.Text.Json.JsonDocument.Parse(line);
            var root = doc.RootElement;
            Assert.Equal(["serial", "hubId", "kind", "start", "end", "parameters"], root.EnumerateObject().Select(p => p.Name));
            Assert.True(DateTimeOffset.TryParse(root.GetProperty("start").GetString(), out _));
        }

        var over = Assert.Single(truth, t => t.Kind == FaultKind.OverInfusion);
        Assert.Equal(TestFleet.Serial(3), over.Serial);
        Assert.Equal(20, over.Parameters["percent"]!.GetValue<double>());
        Assert.Equal(o.Start.AddDays(1), over.Start);
    }

    [Fact]
    public void FullStall_DeliversNothing_AndRaisesCriticalMotorStall()
    {
        var o = TestFleet.Quiet(pumps: 2, days: 5);
        var outputs = TestFleet.Run(o, """{ "faults": [ { "kind": "full-stall", "pumpIndex": 0, "startAfterDays": 2 } ] }""");
        var gt = Assert.Single(TestFleet.Truth(outputs));
        Assert.Equal(FaultKind.FullStall, gt.Kind);
        Assert.Null(gt.End);
        var events = TestFleet.EventsOf(outputs, TestFleet.Serial(0));
        var after = events.Where(e => e.At >= gt.Start).ToList();
        var alarm = Assert.Single(after.OfType<AlarmRaised>(), a => a.Code == "MOTOR_STALL");
        Assert.Equal("critical", alarm.Severity);
        Assert.Contains(after.OfType<DeliveryStateChanged>(), d => d is { State: "stopped", Reason: "stall" });
        var doses = events.OfType<DoseDelivered>().Where(d => d.From >= gt.Start).ToList();
        Assert.True(doses.Count >= 60);
        Assert.All(doses, d => Assert.Equal(0, d.VolumeMl));
        Assert.All(after.OfType<StatusReported>().Where(s => s.At > gt.Start), s => Assert.Equal("stalled", s.Motor));
        Assert.Contains(events.OfType<DoseDelivered>(), d => d.At < gt.Start && d.VolumeMl > 0);

        // The healthy pump next to it keeps delivering.
        Assert.All(TestFleet.EventsOf(outputs, TestFleet.Serial(1)).OfType<DoseDelivered>(), d => Assert.True(d.VolumeMl > 0));
    }

    [Theory]
    [InlineData("over-infusion", 20, 1.20)]
    [InlineData("under-infusion", 30, 0.70)]
    public void FlowFault_ShowsInMeasuredLevels_NotInPumpArithmetic(string kind, double percent, double expectedRatio)
    {
        var o = WithSensors(pumps: 40, days: 14);
        var index = TestFleet.FindPump(o, (p, rx) => rx.AverageRateMlPerDay >= 0.4 && p.Device.ReservoirCapacityMl == 40);
        o.Pumps = index + 1; // pumps are seeded by index, so the rest of the fleet can be left out
        var outputs = TestFleet.Run(o, $$"""{ "faults": [ { "kind": "{{kind}}", "pumpIndex": {{index}}, "startAfterDays": 1, "parameters": { "percent": {{percent}} } } ] }""");
        var gt = Assert.Single(TestFleet.Truth(outputs));
        var events = TestFleet.EventsOf(outputs, TestFleet.Serial(index));

        // Measured level against cumulative motor volume within one refill interval: slope = true/programmed flow.
        var segment = LongestSegmentAfter(events, gt.Start);
        var points = new List<(double Motor, double Level)>();
        var motor = 0.0;
        foreach (var e in segment)
        {
            if (e is DoseDelivered d)
            {
                motor += d.VolumeMl;
            }
            else if (e is ReservoirLevelReported { Source: "measured" } l && l.VolumeMl > 1.5)
            {
                points.Add((motor, l.VolumeMl));
            }
        }

        Assert.True(points.Count >= 10, $"only {points.Count} readings");
        var slope = -Slope(points);
        Assert.InRange(slope, expectedRatio - 0.05, expectedRatio + 0.05);

        // The motor's own reports do not see it: they are exactly those of the same pump without the fault.
        var healthy = TestFleet.EventsOf(TestFleet.Run(o), TestFleet.Serial(index)).OfType<DoseDelivered>().Select(d => (d.At, d.VolumeMl));
        Assert.Equal(healthy, events.OfType<DoseDelivered>().Select(d => (d.At, d.VolumeMl)));
    }

    [Fact]
    public void OverInfusion_ShowsAtRefill_AsAspiratedBelowExpected()
    {
        // A low-rate 40 mL pump, so that 30 % extra does not empty it before the next refill.
        var o = TestFleet.Quiet(pumps: 60, days: 200);
        o.SensorFraction = 0;
        o.ReportingInterval = o.LevelInterval = TimeSpan.FromHours(6);
        var index = TestFleet.FindPump(o, (p, rx) => rx.AverageRateMlPerDay is >= 0.15 and <= 0.3 && p.Device.ReservoirCapacityMl == 40);
        o.Pumps = index + 1;
        var outputs = TestFleet.Run(o, $$"""{ "faults": [ { "kind": "over-infusion", "pumpIndex": {{index}}, "startAfterDays": 0, "parameters": { "percent": 30 } } ] }""");
        var events = TestFleet.EventsOf(outputs, TestFleet.Serial(index));
        double? filled = null;
        var motor = 0.0;
        var checkedRefills = 0;
        foreach (var e in events)
        {
            if (e is DoseDelivered d)
            {
                motor += d.VolumeMl;
            }
            else if (e is RefillPerformed r)
            {
                if (filled is { } f && r.AspiratedResidualMl > 0.5)
                {
                    // The pump's arithmetic expects the fill minus motor volume; 30 % more really left the reservoir.
                    Assert.Equal(Math.Max(0, f - motor), r.ExpectedResidualMl, 0.011);
                    Assert.InRange((f - r.AspiratedResidualMl) / motor, 1.25, 1.36);
                    checkedRefills++;
                }

                filled = r.AddedMl;
                motor = 0;
            }
        }

        Assert.True(checkedRefills >= 1);
        Assert.All(events.OfType<ReservoirLevelReported>(), l => Assert.Equal("estimated", l.Source));
    }

    [Fact]
    public void PocketFill_ShowsAtNextRefill_AsAspiratedFarBelowExpected()
    {
        var o = WithSensors(pumps: 40, days: 230);
        var index = TestFleet.FindPump(o, (p, rx) => rx.AverageRateMlPerDay >= 0.2);
        o.Pumps = index + 1; // pumps are seeded by index, so the rest of the fleet can be left out
        var outputs = TestFleet.Run(o, $$"""{ "faults": [ { "kind": "pocket-fill", "pumpIndex": {{index}}, "startAfterDays": 0 } ] }""");
        var gt = Assert.Single(TestFleet.Truth(outputs));
        Assert.Equal(FaultKind.PocketFill, gt.Kind);
        var events = TestFleet.EventsOf(outputs, TestFleet.Serial(index));
        var refills = events.OfType<RefillPerformed>().ToList();
        var pocket = Assert.Single(refills, r => r.At == gt.Start);
        var next = refills.First(r => r.At > pocket.At);

        // More than 2 mL (40 mL pump) / 1 mL (20 mL pump) between expected and measured is consequential (§0.3).
        Assert.True(next.ExpectedResidualMl - next.AspiratedResidualMl > 2, $"expected {next.ExpectedResidualMl}, aspirated {next.AspiratedResidualMl}");
        Assert.True(next.AspiratedResidualMl < 0.5);
        var levels = events.OfType<ReservoirLevelReported>().Where(l => l.At > pocket.At && l.At < next.At).ToList();
        Assert.NotEmpty(levels);
        Assert.All(levels, l => Assert.True(l.VolumeMl < 0.6));

        // The healthy refills before it matched.
        Assert.All(refills.Where(r => r.At < pocket.At), r => Assert.True(Math.Abs(r.ExpectedResidualMl - r.AspiratedResidualMl) < 1.5));
    }

    [Fact]
    public void CatheterOcclusion_StopsMeasuredLevelFalling_WhileMotorKeepsReporting()
    {
        var o = WithSensors(pumps: 40, days: 10);
        var index = TestFleet.FindPump(o, (p, rx) => rx.AverageRateMlPerDay >= 0.3);
        o.Pumps = index + 1; // pumps are seeded by index, so the rest of the fleet can be left out
        var outputs = TestFleet.Run(o, $$"""{ "faults": [ { "kind": "catheter-occlusion", "pumpIndex": {{index}}, "startAfterDays": 1, "parameters": { "alarm": true, "alarmDelayHours": 12 } } ] }""");
        var gt = Assert.Single(TestFleet.Truth(outputs));
        var events = TestFleet.EventsOf(outputs, TestFleet.Serial(index));
        var segment = LongestSegmentAfter(events, gt.Start);
        var levels = segment.OfType<ReservoirLevelReported>().Select(l => l.VolumeMl).ToList();
        Assert.True(levels.Count >= 10);
        Assert.True(levels.Max() - levels.Min() < 0.8, $"level moved {levels.Max() - levels.Min()} mL");
        Assert.True(segment.OfType<DoseDelivered>().Sum(d => d.VolumeMl) > 1.0);
        var alarm = Assert.Single(events.OfType<AlarmRaised>(), a => a.Code == "CATHETER_OCCLUSION");
        Assert.Equal(gt.Start.AddHours(12), alarm.At);
    }

    [Fact]
    public void BatteryFailure_ResetsThenEriThenEarlyEos()
    {
        var o = TestFleet.Quiet(pumps: 2, days: 40);
        var outputs = TestFleet.Run(o, """
            { "faults": [ { "kind": "battery-failure", "pumpIndex": 1, "startAfterDays": 1, "parameters": { "eriAfterDays": 2, "eosAfterEriDays": 20 } } ] }
            """);
        var gt = Assert.Single(TestFleet.Truth(outputs));
        var events = TestFleet.EventsOf(outputs, TestFleet.Serial(1));
        var alarms = events.OfType<AlarmRaised>().Where(a => a.At >= gt.Start).ToList();
        Assert.Equal(["LOW_BATTERY_RESET", "ELECTIVE_REPLACEMENT", "END_OF_SERVICE"], alarms.Select(a => a.Code));
        Assert.Equal(gt.Start, alarms[0].At);
        Assert.Equal(DateTimeOffset.Parse(gt.Parameters["eosAt"]!.GetValue<string>(), System.Globalization.CultureInfo.InvariantCulture), alarms[2].At);
        Assert.Equal(events[^1].At, alarms[2].At);
        Assert.Contains(events, e => e is DeliveryStateChanged { Reason: "end-of-service" });
    }

    [Fact]
    public void IntermittentStall_RaisesAndClearsMotorStall_AndLosesSomeDelivery()
    {
        var o = TestFleet.Quiet(pumps: 1, days: 8);
        var outputs = TestFleet.Run(o, """
            { "faults": [ { "kind": "intermittent-stall", "pumpIndex": 0, "startAfterDays": 1, "durationDays": 5,
                            "parameters": { "episodesPerDay": 3, "episodeHours": 3 } } ] }
            """);
        var gt = Assert.Single(TestFleet.Truth(outputs));
        var events = TestFleet.EventsOf(outputs, TestFleet.Serial(0));
        var raised = events.OfType<AlarmRaised>().Count(a => a.Code == "MOTOR_STALL");
        var cleared = events.OfType<AlarmCleared>().Count(a => a.Code == "MOTOR_STALL");
        Assert.InRange(raised, 3, 40);
        Assert.InRange(cleared, raised - 1, raised);
        Assert.Contains(events.OfType<DoseDelivered>(), d => d.At > gt.Start && d.VolumeMl == 0);
        Assert.DoesNotContain(events.OfType<AlarmRaised>(), a => a.At < gt.Start || a.At > gt.End!.Value.AddHours(1));
    }

    [Fact]
    public void SilentHub_SendsNothingDuringTheWindow_ThenItsBacklogWithDevice()
    {
        var o = TestFleet.Quiet(pumps: 6, days: 6);
        var hub = new FleetGenerator(o).Plan.Pumps[0].HubId;
        var outputs = TestFleet.Run(o, $$"""{ "faults": [ { "kind": "silent-hub", "hubId": "{{hub}}", "startAfterDays": 2, "durationDays": 2 } ] }""");
        var truth = TestFleet.Truth(outputs);
        var plan = new FleetGenerator(o).Plan;
        Assert.Equal(plan.Hubs.Single(h => h.HubId == hub).Pumps.Select(p => p.Serial), truth.Select(t => t.Serial));
        var start = o.Start.AddDays(2);
        var end = o.Start.AddDays(4);
        var batches = outputs.OfType<PumpBatch>().Where(b => b.HubId == hub).ToList();
        Assert.DoesNotContain(batches, b => b.At > start && b.At < end);
        var firstAfter = batches.First(b => b.At >= end);
        Assert.NotNull(firstAfter.Device);
        Assert.Contains(firstAfter.Events, e => e.Event.At > start && e.Event.At < end);
        Assert.Contains(outputs.OfType<HubConnectivityChanged>(), c => c.HubId == hub && !c.Online && c.At == start);
    }

    [Fact]
    public void CohortDrift_RaisesStallRateOfThatFirmwareOnly()
    {
        var o = TestFleet.Quiet(pumps: 120, days: 30);
        o.FaultRateMultiplier = 1;

        // Only the ground truth matters here; daily steps keep the run short (rates are per pump-year either way).
        o.ReportingInterval = o.LevelInterval = o.BatchInterval = TimeSpan.FromDays(1);
        var scenario = """
            { "rates": { "full-stall": 0.02, "intermittent-stall": 0, "under-infusion": 0, "over-infusion": 0, "pocket-fill": 0,
                         "catheter-occlusion": 0, "battery-failure": 0, "silent-hub": 0 },
              "cohortDrift": [ { "firmware": "4.1.0", "kinds": ["full-stall"], "rateMultiplier": 3000 } ] }
            """;
        var plan = new FleetGenerator(o).Plan;
        var cohort = plan.Pumps.Where(p => p.Device.Firmware == "4.1.0").Select(p => p.Serial).ToHashSet();
        var truth = TestFleet.Truth(TestFleet.Run(o, scenario));
        var stalls = truth.Where(t => t.Kind == FaultKind.FullStall).ToList();
        Assert.True(cohort.Count >= 10);
        Assert.Equal(cohort.Order(StringComparer.Ordinal), truth.Where(t => t.Kind == FaultKind.CohortDrift).Select(t => t.Serial).Order(StringComparer.Ordinal));
        Assert.True(stalls.Count(s => cohort.Contains(s.Serial)) >= cohort.Count * 0.8);
        Assert.True(stalls.Count(s => !cohort.Contains(s.Serial)) <= 2);
        Assert.All(stalls.Where(s => cohort.Contains(s.Serial)), s => Assert.Equal("cohort-drift", s.Parameters["cause"]!.GetValue<string>()));
    }

    [Theory]
    [InlineData("""{ "faults": [ { "kind": "meteor", "pumpIndex": 0, "startAfterDays": 1 } ] }""")]
    [InlineData("""{ "faults": [ { "kind": "full-stall", "startAfterDays": 1 } ] }""")]
    [InlineData("""{ "faults": [ { "kind": "full-stall", "pumpIndex": 0 } ] }""")]
    [InlineData("""{ "rates": { "full-stall": -1 } }""")]
    [InlineData("""{ "cohortDrift": [ { "rateMultiplier": 2 } ] }""")]
    [InlineData("""{ "unknownField": 1 }""")]
    [InlineData("""not json""")]
    public void Scenario_WithErrors_IsRejectedWithAMessage(string json)
    {
        var e = Assert.Throws<FormatException>(() => FaultScenario.Parse(json));
        Assert.False(string.IsNullOrWhiteSpace(e.Message));
    }

    [Fact]
    public void Scenario_NamingAPumpOutsideTheFleet_IsRejected()
    {
        var scenario = FaultScenario.Parse("""{ "faults": [ { "kind": "full-stall", "serial": "NOPE-1", "startAfterDays": 1 } ] }""");
        Assert.Throws<FormatException>(() => new FleetGenerator(TestFleet.Quiet(3, 1), scenario));
    }

    /// <summary>The longest run of events between refills that starts after <paramref name="from"/>.</summary>
    private static List<DeviceEvent> LongestSegmentAfter(List<DeviceEvent> events, DateTimeOffset from)
    {
        var segments = new List<List<DeviceEvent>> { new() };
        foreach (var e in events.Where(e => e.At > from))
        {
            if (e is RefillPerformed or DeliveryStateChanged { Reason: "programming" })
            {
                segments.Add([]);
                continue;
            }

            segments[^1].Add(e);
        }

        return segments.MaxBy(s => s.Count)!;
    }

    private static double Slope(List<(double X, double Y)> points)
    {
        var mx = points.Average(p => p.X);
        var my = points.Average(p => p.Y);
        return points.Sum(p => (p.X - mx) * (p.Y - my)) / points.Sum(p => (p.X - mx) * (p.X - mx));
    }
}
