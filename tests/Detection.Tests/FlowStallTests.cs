using PumpFleet.Contracts.Events;
using PumpFleet.Domain.Detection;
using static PumpFleet.Detection.Tests.PumpScript;

namespace PumpFleet.Detection.Tests;

public sealed class FlowStallTests
{
    [Fact]
    public void ZeroDose_WhileProgrammedAndRunning_OpensOneCriticalStallInThatInterval()
    {
        var p = new PumpScript();
        p.Start(rate: 0.48);
        p.Now = T0.AddHours(1);
        Assert.Empty(p.Batch(Dose(T0, T0.AddHours(1), 0.02)));

        p.Now = T0.AddHours(2);
        var decided = p.Batch(Dose(T0.AddHours(1), T0.AddHours(2), 0));

        var opened = Assert.Single(decided.OfType<AnomalyDetected>());
        Assert.Equal(AnomalyKinds.FlowStall, opened.Kind);
        Assert.Equal("critical", opened.Severity);
        Assert.Equal(1, opened.Evidence["zeroDeliveryIntervals"]);
        Assert.Equal(0.02, opened.Evidence["missingVolumeMl"], 4);
        Assert.Equal(T0.AddHours(2), opened.At);   // event time, not wall time
    }

    [Fact]
    public void StallPersisting_DoesNotOpenASecondAnomaly()
    {
        var p = new PumpScript();
        p.Start(rate: 0.48);
        for (var h = 1; h <= 10; h++)
        {
            p.Now = T0.AddHours(h);
            p.Batch(Dose(T0.AddHours(h - 1), T0.AddHours(h), 0));
        }

        Assert.Single(p.Opened(AnomalyKinds.FlowStall));
        Assert.Single(p.State.Anomalies.Values, a => a.Kind == AnomalyKinds.FlowStall);
    }

    [Fact]
    public void MotorStallAlarm_AloneOpensStall_AndDeliveryAfterClearResolvesAutomatically()
    {
        var p = new PumpScript();
        p.Start(rate: 0.48);
        p.Now = T0.AddMinutes(30);
        var opened = Assert.Single(p.Batch(Alarm(T0.AddMinutes(30), "MOTOR_STALL")).OfType<AnomalyDetected>());
        Assert.Equal(1, opened.Evidence["motorStallAlarm"]);

        // Alarm cleared but no delivery seen yet: keep it open.
        p.Now = T0.AddHours(3);
        Assert.Empty(p.Batch(Cleared(T0.AddHours(3), "MOTOR_STALL")));
        Assert.NotNull(p.Open(AnomalyKinds.FlowStall));

        p.Now = T0.AddHours(4);
        var resolved = Assert.Single(p.Batch(Dose(T0.AddHours(3), T0.AddHours(4), 0.02)).OfType<AnomalyResolved>());
        Assert.True(resolved.Automatic);
        Assert.Equal("system", resolved.By);
        Assert.Equal(opened.AnomalyId, resolved.AnomalyId);
        Assert.Null(p.Open(AnomalyKinds.FlowStall));
    }

    [Fact]
    public void DeliveryStoppedForStall_OpensStall_ButStoppedForProgramming_DoesNot()
    {
        var stall = new PumpScript();
        stall.Start(rate: 0.48);
        Assert.Single(stall.Batch(Stopped(T0.AddMinutes(5), "stall")).OfType<AnomalyDetected>());

        var refill = new PumpScript();
        refill.Start(rate: 0.48);
        refill.Batch(Stopped(T0.AddMinutes(5), "programming"), Dose(T0, T0.AddHours(1), 0));
        Assert.Empty(refill.Decisions);
    }

    [Fact]
    public void ShortenedInterval_AfterARefillStop_IsNotAStall()
    {
        var p = new PumpScript();
        p.Start(rate: 0.48);

        // 45 of 60 minutes delivered (a refill stop of 15 minutes): 75 % of programmed.
        p.Batch(Dose(T0, T0.AddHours(1), 0.015));
        Assert.Empty(p.Decisions);
    }

    [Fact]
    public void StatusMotorStalled_OpensStall_AndIsIgnoredWhenClockSuspect()
    {
        var p = new PumpScript();
        p.Start(rate: 0.48);
        Assert.Empty(p.Device(Status(new DateTimeOffset(2000, 1, 1, 0, 0, 0, TimeSpan.Zero), motor: "running"), clockSuspect: true));
        Assert.Single(p.Device(Status(T0.AddHours(1), motor: "stalled")).OfType<AnomalyDetected>());
    }

    [Fact]
    public void ZeroDose_WithClockSuspectTime_IsIgnored()
    {
        var p = new PumpScript();
        p.Start(rate: 0.48);
        var reset = new DateTimeOffset(2000, 1, 1, 0, 0, 0, TimeSpan.Zero);
        Assert.Empty(p.Device(Dose(reset, reset.AddHours(1), 0), clockSuspect: true));
        Assert.Equal(0, p.State.Detectors.Stall.ConsecutiveZeroIntervals);
    }
}
