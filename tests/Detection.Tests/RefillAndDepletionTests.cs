using PumpFleet.Contracts.Events;
using PumpFleet.Domain.Detection;
using static PumpFleet.Detection.Tests.PumpScript;

namespace PumpFleet.Detection.Tests;

public sealed class RefillAndDepletionTests
{
    [Fact]
    public void SmallPump_ResidualShortByMoreThanOneMl_IsACriticalPossiblePocketFill()
    {
        var p = new PumpScript(capacityMl: 20);
        p.Start(rate: 0.5);
        p.Now = T0.AddDays(30);
        var decided = p.Batch(Dose(T0, p.Now, 15), Refill(p.Now, 4.0, 2.5, 20));

        var a = Assert.Single(decided.OfType<AnomalyDetected>(), d => d.Kind == AnomalyKinds.RefillDiscrepancy);
        Assert.Equal("critical", a.Severity);
        Assert.Equal(1, a.Evidence["possiblePocketFill"]);
        Assert.Equal(1.5, a.Evidence["discrepancyMl"], 4);
        Assert.Equal(1.0, a.Evidence["thresholdMl"]);
        Assert.Contains("pocket fill", a.Summary, StringComparison.Ordinal);
    }

    [Fact]
    public void LargePump_SameDiscrepancy_InsideTwoMlAndTheBand_IsNothing()
    {
        var p = new PumpScript(capacityMl: 40);
        p.Start(rate: 1, level: 40);
        p.Now = T0.AddDays(30);
        p.Batch(Dose(T0, p.Now, 30));
        p.Batch(Refill(p.Now, 10, 8.5, 40));

        Assert.DoesNotContain(p.Decisions.OfType<AnomalyDetected>(), d => d.Kind == AnomalyKinds.RefillDiscrepancy);
    }

    [Fact]
    public void FillLevelSensor_ShortRightAfterRefill_IsPocketFill_AndAnInBandRefillResolvesIt()
    {
        var p = new PumpScript(capacityMl: 20);
        p.Start(rate: 0.5, level: 20);
        p.Now = T0.AddHours(6);
        var decided = p.Batch(Dose(T0, p.Now, 0.125), Measured(p.Now, 0.4));
        var a = Assert.Single(decided.OfType<AnomalyDetected>(), d => d.Kind == AnomalyKinds.RefillDiscrepancy);
        Assert.Equal(1, a.Evidence["possiblePocketFill"]);
        Assert.Equal(19.475, a.Evidence["fillDeficitMl"], 3);

        p.Now = T0.AddDays(20);
        var resolved = p.Batch(Dose(p.Now.AddDays(-1), p.Now, 0.5), Refill(p.Now, 10, 10, 20));
        Assert.Contains(resolved.OfType<AnomalyResolved>(), r => r.AnomalyId == a.AnomalyId && r.Automatic);
    }

    [Fact]
    public void Baclofen_ProjectedBelowThresholdWithin72h_IsCriticalDepletionRisk()
    {
        var p = new PumpScript();
        p.Start(rate: 1.0, drug: "baclofen", level: 5, lowAlarm: 2);
        var a = Assert.Single(p.Decisions.OfType<AnomalyDetected>(), d => d.Kind == AnomalyKinds.DepletionRisk);
        Assert.Equal("critical", a.Severity);
        Assert.Equal(72, a.Evidence["hoursToThreshold"], 1);
        Assert.Contains("baclofen", a.Summary, StringComparison.Ordinal);
    }

    [Fact]
    public void Morphine_48hToThreshold_IsWarning_AndARefillResolvesIt()
    {
        var p = new PumpScript();
        p.Start(rate: 1.0, level: 4, lowAlarm: 2);
        var a = Assert.Single(p.Opened(AnomalyKinds.DepletionRisk));
        Assert.Equal("warning", a.Severity);

        p.Now = T0.AddHours(1);
        var decided = p.Batch(Refill(p.Now, 3.96, 3.9, 20));
        Assert.Contains(decided.OfType<AnomalyResolved>(), r => r.AnomalyId == a.AnomalyId);
    }

    [Fact]
    public void OverInfusingPump_MeasuredLevelsDriveTheProjection_NotTheMotorLedger()
    {
        var p = new PumpScript();
        p.Start(rate: 0.5, level: 10, lowAlarm: 2);

        // The motor says 0.5 mL/day; the sensor says 2 mL/day: the pump's own alarm would never sound in time.
        p.Now = T0.AddDays(2);
        var decided = p.Batch(Dose(T0, p.Now, 1.0), Measured(p.Now, 6));

        var a = Assert.Single(decided.OfType<AnomalyDetected>(), d => d.Kind == AnomalyKinds.DepletionRisk);
        Assert.Equal(2.0, a.Evidence["measuredRateMlPerDay"], 3);
        Assert.Equal(48, a.Evidence["hoursToThreshold"], 1);
        Assert.Equal(9.0, a.Evidence["ledgerLevelMl"], 3);
    }
}
