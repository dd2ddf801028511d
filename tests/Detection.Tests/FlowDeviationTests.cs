using PumpFleet.Contracts.Events;
using PumpFleet.Domain.Detection;
using static PumpFleet.Detection.Tests.PumpScript;

namespace PumpFleet.Detection.Tests;

public sealed class FlowDeviationTests
{
    [Fact]
    public void PerfectlySteadyPump_ZeroVariance_NeverAlarmsAndStaysFinite()
    {
        var p = new PumpScript();
        p.Start(rate: 0.5);
        p.RunSensorPump(days: 20, rate: 0.5, deviation: _ => 0, noiseSd: 0, rng: new Random(1));

        Assert.DoesNotContain(p.Decisions.OfType<AnomalyDetected>(), d => d.Kind is AnomalyKinds.OverInfusion or AnomalyKinds.UnderInfusion);
        var flow = p.State.Detectors.Flow;
        Assert.True(double.IsFinite(flow.Over) && double.IsFinite(flow.Under) && double.IsFinite(flow.NoiseVariance));
        Assert.True(flow.NoiseVariance < 1e-6);
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    public void HealthyNoisyPump_WithinBand_SixtyDays_NoAlarm(int seed)
    {
        var p = new PumpScript(capacityMl: 40);
        p.Start(rate: 0.5, level: 39);

        // +3 %: the worst healthy bias (§1.1 reports about +1 % to +2.5 %).
        p.RunSensorPump(days: 60, rate: 0.5, deviation: _ => 0.03, noiseSd: 0.1, rng: new Random(seed), startLevel: 39);

        Assert.DoesNotContain(p.Decisions.OfType<AnomalyDetected>(), d => d.Kind is AnomalyKinds.OverInfusion or AnomalyKinds.UnderInfusion);
    }

    [Theory]
    [InlineData(0.2, AnomalyKinds.OverInfusion)]
    [InlineData(-0.2, AnomalyKinds.UnderInfusion)]
    public void TwentyPercentDeviation_FromDayFive_IsFoundWithinSevenDays(double deviation, string kind)
    {
        var p = new PumpScript();
        p.Start(rate: 1.0);
        p.RunSensorPump(days: 12, rate: 1.0, deviation: day => day >= 5 ? deviation : 0, noiseSd: 0.1, rng: new Random(11));

        var opened = Assert.Single(p.Opened(kind));
        Assert.InRange(opened.At, T0.AddDays(5), T0.AddDays(12));
        Assert.InRange(Math.Abs(opened.Evidence["relativeDeviation"]), 0.145, 0.6);
        Assert.True(opened.Evidence["cusumSigmas"] > p.Options.FlowCusumThresholdSigmas);
        Assert.Empty(p.Opened(kind == AnomalyKinds.OverInfusion ? AnomalyKinds.UnderInfusion : AnomalyKinds.OverInfusion));
    }

    [Fact]
    public void RefillInTheMiddleOfTheWindow_RestartsTheSegment_AndIsNotFlow()
    {
        var p = new PumpScript();
        p.Start(rate: 1.0);
        p.RunSensorPump(days: 4, rate: 1.0, deviation: _ => 0, noiseSd: 0.05, rng: new Random(5), startLevel: 19);

        // Refill to 20 mL: the level jumps by ~5 mL between two readings.
        p.Now = p.Now.AddMinutes(10);
        p.Batch(Stopped(p.Now, "programming"), Refill(p.Now, 15, 15, 20), Running(p.Now.AddMinutes(5)));
        p.RunSensorPump(days: 4, rate: 1.0, deviation: _ => 0, noiseSd: 0.05, rng: new Random(6), startLevel: 20);
        Assert.Equal(2, p.State.Detectors.Flow.SegmentRefills);

        Assert.DoesNotContain(p.Decisions.OfType<AnomalyDetected>(), d => d.Kind is AnomalyKinds.OverInfusion or AnomalyKinds.UnderInfusion);
        Assert.Equal(0, p.State.Detectors.Flow.Under);
    }

    [Fact]
    public void ClockSuspectAndLateReadings_AreIgnoredByTheFlowDetector()
    {
        var p = new PumpScript();
        p.Start(rate: 1.0);
        p.RunSensorPump(days: 2, rate: 1.0, deviation: _ => 0, noiseSd: 0, rng: new Random(1));
        var before = System.Text.Json.JsonSerializer.Serialize(p.State.Detectors.Flow);

        p.Device(Measured(new DateTimeOffset(2000, 1, 1, 0, 0, 0, TimeSpan.Zero), 3), clockSuspect: true);
        p.Device(Measured(p.Now.AddDays(-1), 2));   // late: older than the last reading used

        Assert.Equal(before, System.Text.Json.JsonSerializer.Serialize(p.State.Detectors.Flow));
    }

    [Fact]
    public void RefillResidual_OverAWholeCycle_ShowsOverInfusionWithoutASensor()
    {
        var p = new PumpScript(capacityMl: 40);
        p.Start(rate: 1.0, level: 40);
        for (var h = 1; h <= 30 * 24; h++)
        {
            p.Now = T0.AddHours(h);
            p.Batch(Dose(T0.AddHours(h - 1), p.Now, 1.0 / 24));
        }

        // 30 mL delivered by the motor; 10 mL expected back, 4 came back: 20 % more left than the motor says.
        var decided = p.Batch(Refill(p.Now, 10, 4, 40));

        var over = Assert.Single(decided.OfType<AnomalyDetected>(), d => d.Kind == AnomalyKinds.OverInfusion);
        Assert.Equal(1, over.Evidence["source"]);
        Assert.Equal(0.2, over.Evidence["relativeDeviation"], 3);
    }
}
