using PumpFleet.Contracts.Events;
using PumpFleet.Simulator.Generation;

namespace PumpFleet.Simulator.Tests;

public sealed class PhysicsTests
{
    [Fact]
    public void Refill_ExpectedResidual_IsAddedMinusMotorDelivery()
    {
        // Pumps without a sensor: expectedResidualMl must be the pump's own arithmetic, i.e. the last fill minus
        // every dose.delivered since.
        var o = TestFleet.Quiet(pumps: 12, days: 200);
        o.SensorFraction = 0;
        var outputs = TestFleet.Run(o);
        var checkedIntervals = 0;
        for (var i = 0; i < o.Pumps; i++)
        {
            var events = TestFleet.EventsOf(outputs, TestFleet.Serial(i));
            double? filled = null;
            var delivered = 0.0;
            foreach (var e in events)
            {
                switch (e)
                {
                    case DoseDelivered d:
                        delivered += d.VolumeMl;
                        break;
                    case RefillPerformed r:
                        if (filled is { } f)
                        {
                            Assert.Equal(Math.Max(0, f - delivered), r.ExpectedResidualMl, 0.011);
                            checkedIntervals++;
                        }

                        Assert.InRange(r.AddedMl, 0.1, 40);
                        filled = r.AddedMl;
                        delivered = 0;
                        break;
                }
            }
        }

        Assert.True(checkedIntervals >= 12, $"only {checkedIntervals} refill intervals checked");
    }

    [Fact]
    public void Refill_AspiratedResidual_OfHealthyPump_IsWithinThreePercentOfDelivery()
    {
        var o = TestFleet.Quiet(pumps: 12, days: 200);
        var outputs = TestFleet.Run(o);
        var checkedIntervals = 0;
        for (var i = 0; i < o.Pumps; i++)
        {
            double? filled = null;
            var delivered = 0.0;
            foreach (var e in TestFleet.EventsOf(outputs, TestFleet.Serial(i)))
            {
                if (e is DoseDelivered d)
                {
                    delivered += d.VolumeMl;
                }
                else if (e is RefillPerformed r)
                {
                    if (filled is { } f && f - (delivered * 1.03) > 0.5)
                    {
                        // True flow = programmed × (1 ± 3 %), aspiration noise σ 0.1 mL.
                        var trueUsed = f - r.AspiratedResidualMl;
                        Assert.InRange(trueUsed, (delivered * 0.97) - 0.5, (delivered * 1.03) + 0.5);
                        checkedIntervals++;
                    }

                    filled = r.AddedMl;
                    delivered = 0;
                }
            }
        }

        Assert.True(checkedIntervals >= 12);
    }

    [Fact]
    public void Step_TracksTrueAndBelievedVolumesSeparately()
    {
        var o = TestFleet.Quiet(pumps: 1, days: 10);
        var plan = new FleetGenerator(o).Plan;
        var pump = new PumpSimulator(o, plan.Pumps[0], []);
        var sink = new List<GeneratedEvent>();
        var truth = new List<Faults.GroundTruthRecord>();
        pump.Step(o.Start, o.Start + o.ReportingInterval, sink, truth);
        var believed0 = pump.BelievedVolumeMl;
        var true0 = pump.TrueVolumeMl;
        var motor = 0.0;
        for (var t = o.Start + o.ReportingInterval; t < o.Start + TimeSpan.FromDays(5); t += o.ReportingInterval)
        {
            sink.Clear();
            pump.Step(t, t + o.ReportingInterval, sink, truth);
            motor += sink.Select(e => e.Event).OfType<DoseDelivered>().Sum(d => d.VolumeMl);
        }

        Assert.Equal(believed0 - motor, pump.BelievedVolumeMl, 1e-6);
        Assert.InRange(true0 - pump.TrueVolumeMl, motor * 0.97, motor * 1.03);
    }

    [Fact]
    public void Bolus_Decisions_FollowLockoutAndDailyLimit()
    {
        var o = TestFleet.Quiet(pumps: 40, days: 20);
        var outputs = TestFleet.Run(o);
        var reasons = new HashSet<string>();
        var granted = 0;
        for (var i = 0; i < o.Pumps; i++)
        {
            BolusSettings? settings = null;
            DateTimeOffset? last = null;
            var window = new Queue<DateTimeOffset>();
            foreach (var e in TestFleet.EventsOf(outputs, TestFleet.Serial(i)))
            {
                if (e is PrescriptionSet p)
                {
                    settings = p.Bolus;
                }
                else if (e is BolusRequested b)
                {
                    Assert.NotNull(settings);
                    while (window.Count > 0 && window.Peek() <= b.At.AddDays(-1))
                    {
                        window.Dequeue();
                    }

                    var expected = last is { } l && b.At - l < TimeSpan.FromMinutes(settings.LockoutMin) ? "lockout"
                        : window.Count >= settings.MaxPerDay ? "daily-limit"
                        : null;
                    Assert.Equal(expected, b.Reason);
                    Assert.Equal(expected is null, b.Granted);
                    if (b.Granted)
                    {
                        last = b.At;
                        window.Enqueue(b.At);
                        granted++;
                    }
                    else
                    {
                        reasons.Add(b.Reason!);
                    }
                }
            }
        }

        Assert.True(granted > 0);
        Assert.Contains("lockout", reasons);
        Assert.Contains("daily-limit", reasons);
    }

    [Fact]
    public void Battery_ReachesEri_ThenEndOfService_AtLeast90DaysLater_ThenStops()
    {
        // Daily steps over four years so that natural ERI and EOS happen inside the run.
        var o = TestFleet.Quiet(pumps: 30, days: 4 * 365);
        o.ReportingInterval = TimeSpan.FromDays(1);
        o.LevelInterval = TimeSpan.FromDays(1);
        o.BatchInterval = TimeSpan.FromDays(1);
        var outputs = TestFleet.Run(o);
        var ended = 0;
        for (var i = 0; i < o.Pumps; i++)
        {
            var events = TestFleet.EventsOf(outputs, TestFleet.Serial(i));
            var eri = events.OfType<AlarmRaised>().FirstOrDefault(a => a.Code == "ELECTIVE_REPLACEMENT");
            var eos = events.OfType<AlarmRaised>().FirstOrDefault(a => a.Code == "END_OF_SERVICE");
            var pct = events.OfType<StatusReported>().Select(s => s.BatteryPct!.Value).ToList();
            for (var k = 1; k < pct.Count; k++)
            {
                Assert.True(pct[k] <= pct[k - 1], "battery must not recharge");
            }

            if (eos is null)
            {
                continue;
            }

            Assert.NotNull(eri);
            if (eri.At == o.Start)
            {
                // ERI happened before the run and is only re-announced at its start.
                continue;
            }

            ended++;
            Assert.Equal("non-critical", eri.Severity);
            Assert.Equal("critical", eos.Severity);
            Assert.True(eos.At - eri.At >= TimeSpan.FromDays(90), $"EOS {eos.At} only {(eos.At - eri.At).TotalDays} days after ERI");
            var stop = Assert.Single(events.OfType<DeliveryStateChanged>(), d => d.Reason == "end-of-service");
            Assert.Equal("stopped", stop.State);
            Assert.All(events, e => Assert.True(e.At <= eos.At, "a pump at end of service reports nothing more"));
        }

        Assert.True(ended > 0, "some pump must reach end of service in four years");
    }

    [Fact]
    public void BatteryCurve_IsTenPercentAtEri_AndZeroAtEos()
    {
        var o = TestFleet.Quiet(pumps: 50, days: 1);
        foreach (var p in new FleetGenerator(o).Plan.Pumps)
        {
            var sim = new PumpSimulator(o, p, []);
            Assert.True(sim.EosAt - sim.EriAt >= TimeSpan.FromDays(90));
            Assert.InRange(sim.BatteryPct(sim.EriAt - TimeSpan.FromMinutes(1)), 9.9, 10.1);
            Assert.Equal(0, sim.BatteryPct(sim.EosAt));
        }
    }

    [Fact]
    public void FlexSchedule_IntegratesAcrossStepBoundaries()
    {
        var rx = new Prescription
        {
            Drug = Catalog.Baclofen,
            ConcentrationValue = 2000,
            Flex = true,
            Steps = [(0, 0.4), (8 * 60, 1.2), (20 * 60, 0.6)],
            LowReservoirAlarmMl = 2,
        };
        var day = new DateTimeOffset(2026, 3, 1, 0, 0, 0, TimeSpan.Zero);
        Assert.Equal((0.4 * 8 / 24) + (1.2 * 12 / 24) + (0.6 * 4 / 24), rx.Volume(day, day.AddDays(1)), 1e-9);
        Assert.Equal((0.4 / 24) + (1.2 / 24), rx.Volume(day.AddHours(7), day.AddHours(9)), 1e-9);
        Assert.Equal(rx.AverageRateMlPerDay, rx.Volume(day, day.AddDays(1)), 1e-9);
    }
}
