using PumpFleet.Contracts.Events;
using PumpFleet.Domain.Detection;
using static PumpFleet.Detection.Tests.PumpScript;

namespace PumpFleet.Detection.Tests;

/// <summary>Detectors on incomplete data (issue 13): a refill still in transit must not read as a flow deviation.</summary>
public sealed class IncompleteDataTests
{
    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void ARefillInTransit_ShowsNoFlowDeviationWhileItsGapIsOpen_AndTheLateRefillRefoldsCleanly(bool wait)
    {
        var p = new PumpScript(options: new AnomalyDetectionOptions { IncompleteDataWait = wait ? TimeSpan.FromHours(48) : TimeSpan.Zero });
        p.Start(rate: 1.0, level: 10);
        p.RunSensorPump(days: 4, rate: 1.0, deviation: _ => 0, noiseSd: 0.02, rng: new Random(3), startLevel: 10);

        // Refilled to 19 mL; the refill event is lost in transit, the sensor's readings after it arrive.
        var refillSeq = p.Skip();
        var refill = Refill(p.Now, 6, 6, 19);
        p.RunSensorPump(days: 1, rate: 1.0, deviation: _ => 0, noiseSd: 0.02, rng: new Random(4), startLevel: 19);

        var flowOpened = p.Decisions.OfType<AnomalyDetected>().Any(d => d.Kind is AnomalyKinds.OverInfusion or AnomalyKinds.UnderInfusion);
        Assert.Equal(!wait, flowOpened);   // without waiting, the level jump reads as "less consumed than delivered"
        if (!wait)
        {
            return;
        }

        p.Late(refill, refillSeq);
        Assert.Null(p.State.Window);
        Assert.Equal(19 - (1.0 / 24 * 24), p.State.Ledger.EstimatedMl!.Value, 6);
        p.RunSensorPump(days: 2, rate: 1.0, deviation: _ => 0, noiseSd: 0.02, rng: new Random(5), startLevel: 18);
        Assert.DoesNotContain(p.Decisions.OfType<AnomalyDetected>(), d => d.Kind is AnomalyKinds.OverInfusion or AnomalyKinds.UnderInfusion or AnomalyKinds.RefillDiscrepancy);
    }

    [Fact]
    public void Reevaluate_AdvancesTheLedgerAndTheBatteryForecastWithTime()
    {
        var p = new PumpScript();
        p.Start(rate: 2.0, drug: "baclofen", level: 12, lowAlarm: 2);
        Assert.Empty(p.Decisions);

        // No data at all: 2 days later the ledger says 8 mL, 3 days to the threshold — just beyond the 72 h horizon.
        Assert.Empty(AnomalyEngine.Reevaluate(p.State, p.Options, p.Now.AddDays(1.9)));
        var risk = Assert.IsType<AnomalyDetected>(Assert.Single(AnomalyEngine.Reevaluate(p.State, p.Options, p.Now.AddDays(2.1))));
        Assert.Equal((AnomalyKinds.DepletionRisk, "critical"), (risk.Kind, risk.Severity));
        Assert.Equal(p.Now.AddDays(2.1), risk.At);
        Assert.Equal(12 - 4.2, risk.Evidence["ledgerLevelMl"], 6);

        // Never before the pump's own event time.
        Assert.Empty(AnomalyEngine.Reevaluate(p.State, p.Options, p.Now.AddDays(-5)));
    }
}
