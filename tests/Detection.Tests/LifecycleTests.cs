using System.Text.Json;
using PumpFleet.Contracts.Events;
using PumpFleet.Domain.Detection;
using PumpFleet.Domain.Pumps;
using PumpFleet.Domain.States;
using static PumpFleet.Detection.Tests.PumpScript;

namespace PumpFleet.Detection.Tests;

public sealed class LifecycleTests
{
    [Fact]
    public void Acknowledged_ThenConditionClears_IsResolvedAutomatically()
    {
        var p = new PumpScript();
        p.Start(rate: 0.48);
        p.Now = T0.AddHours(1);
        var opened = Assert.Single(p.Batch(Dose(T0, p.Now, 0)).OfType<AnomalyDetected>());

        p.Platform(new AnomalyAcknowledged { At = p.Now, AnomalyId = opened.AnomalyId, By = "nurse" });
        Assert.Equal("acknowledged", p.State.Anomalies[opened.AnomalyId].Status.ToWire());
        p.Now = T0.AddHours(2);
        Assert.Empty(p.Batch(Dose(T0.AddHours(1), p.Now, 0)));   // still stalled: no duplicate while acknowledged

        p.Now = T0.AddHours(3);
        var resolved = Assert.Single(p.Batch(Dose(T0.AddHours(2), p.Now, 0.02)).OfType<AnomalyResolved>());
        Assert.Equal(opened.AnomalyId, resolved.AnomalyId);
        Assert.Empty(p.State.Anomalies);
    }

    [Fact]
    public void MoreSevereFinding_SupersedesTheOpenOne_KeepingOneOpenPerKind()
    {
        var p = new PumpScript();
        p.Start(rate: 0.48);
        p.Now = T0.AddDays(1);
        var eri = Assert.Single(p.Batch(Alarm(p.Now, "ELECTIVE_REPLACEMENT", "non-critical")).OfType<AnomalyDetected>());
        Assert.Equal(AnomalyKinds.BatteryEndOfLife, eri.Kind);
        Assert.Equal("warning", eri.Severity);

        p.Now = T0.AddDays(2);
        var decided = p.Batch(Alarm(p.Now, "LOW_BATTERY_RESET"));
        Assert.Equal(eri.AnomalyId, Assert.Single(decided.OfType<AnomalyResolved>()).AnomalyId);
        Assert.Equal("critical", Assert.Single(decided.OfType<AnomalyDetected>()).Severity);
        Assert.Single(p.State.Anomalies.Values, a => a.Kind == AnomalyKinds.BatteryEndOfLife);

        // Back to only ERI: a less severe finding never replaces a more severe one.
        p.Now = T0.AddDays(3);
        Assert.Empty(p.Batch(Cleared(p.Now, "LOW_BATTERY_RESET")));
    }

    [Fact]
    public void BatteryTrend_ProjectingEndOfServiceWithinHorizon_OpensInfo()
    {
        var p = new PumpScript();
        p.Start(rate: 0.48);
        for (var d = 1; d <= 30; d++)
        {
            p.Now = T0.AddDays(d);
            p.Batch(Status(p.Now, pct: 20 - (0.1 * d)));
        }

        var a = Assert.Single(p.Opened(AnomalyKinds.BatteryEndOfLife));
        Assert.Equal("info", a.Severity);
        Assert.Equal(-0.1, a.Evidence["slopePctPerDay"], 3);
        Assert.InRange(a.Evidence["forecastDaysToEmpty"], 150, 180);
    }

    [Fact]
    public void SnapshotPlusTail_GivesIdenticalDetectorState_AndNoDuplicateAnomaly()
    {
        var p = new PumpScript();
        p.Start(rate: 1.0);
        p.RunSensorPump(days: 12, rate: 1.0, deviation: day => day >= 4 ? 0.25 : 0, noiseSd: 0.1, rng: new Random(3));
        p.Now = p.Now.AddHours(1);
        p.Batch(Dose(p.Now.AddHours(-1), p.Now, 0));
        Assert.NotEmpty(p.Opened(AnomalyKinds.OverInfusion));
        Assert.NotEmpty(p.Opened(AnomalyKinds.FlowStall));

        var straight = JsonSerializer.Serialize(p.State, SnapshotJson.Options);
        foreach (var cut in new[] { 1, p.Log.Count / 3, p.Log.Count / 2, p.Log.Count - 1 })
        {
            var head = new PumpState { Serial = p.State.Serial };
            foreach (var (e, env) in p.Log.Take(cut))
            {
                head.Apply(e, env);
            }

            var restored = JsonSerializer.Deserialize<PumpState>(JsonSerializer.Serialize(head, SnapshotJson.Options), SnapshotJson.Options)!;
            foreach (var (e, env) in p.Log.Skip(cut))
            {
                restored.Apply(e, env);
            }

            Assert.Equal(straight, JsonSerializer.Serialize(restored, SnapshotJson.Options));
            Assert.Empty(AnomalyEngine.Evaluate(restored, p.Options));
        }
    }

    [Fact]
    public void DuplicateEvents_AreDroppedByThePlanner_SoDetectorsSeeEachOnce()
    {
        var p = new PumpScript();
        p.Start(rate: 0.48);
        p.Now = T0.AddHours(1);
        p.Batch(Dose(T0, p.Now, 0));
        var stored = p.Log.Where(l => l.Event is DeviceEvent).Select(l => (DeviceEvent)l.Event).ToList();

        var plan = IngestPlanner.Plan(p.State, new PumpFleet.Contracts.Grains.IngestBatch { HubId = "H-1", ReceivedAt = p.Now, Events = stored }, Guid.NewGuid);

        Assert.Empty(plan.Events);
        Assert.Equal(stored.Count, plan.Duplicates);
        Assert.Equal(1, p.State.Detectors.Stall.ConsecutiveZeroIntervals);
    }

    [Fact]
    public void AnomalyIdsAndEventIds_AreDeterministic()
    {
        Assert.Equal("P-9:flow-stall:42", AnomalyEngine.AnomalyId("P-9", AnomalyKinds.FlowStall, 42));
        var e = new AnomalyResolved { At = T0, AnomalyId = "P-9:flow-stall:42", By = "system", Automatic = true };
        Assert.Equal(AnomalyEngine.EventId(e), AnomalyEngine.EventId(e with { At = T0.AddDays(1) }));
        Assert.NotEqual(AnomalyEngine.EventId(e), AnomalyEngine.EventId(new AnomalyDetected
        {
            At = T0, AnomalyId = "P-9:flow-stall:42", Kind = "flow-stall", Severity = "critical", Summary = "", Evidence = new Dictionary<string, double>(),
        }));
    }

    [Fact]
    public void Options_DefaultsAreValid_AndInconsistentHorizonsAreRejected()
    {
        var validator = new PumpFleet.Grains.Detection.AnomalyDetectionOptionsValidator();
        Assert.True(validator.Validate(null, new AnomalyDetectionOptions()).Succeeded);

        var bad = new AnomalyDetectionOptions { DepletionCriticalHorizon = TimeSpan.FromDays(5), DepletionHorizon = TimeSpan.FromDays(3) };
        var result = validator.Validate(null, bad);
        Assert.True(result.Failed);
        Assert.Contains(result.Failures, f => f.Contains(nameof(AnomalyDetectionOptions.DepletionHorizon), StringComparison.Ordinal));
    }
}
