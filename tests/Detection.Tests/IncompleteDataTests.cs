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
    public void ARefillMissingFromABacklog_ShowsNoFlowDeviation_ThoughItsGapIsDaysOldInEventTime()
    {
        // The scoring's extra false alerts with late refills: a hub offline for three days uploads its backlog, minus
        // the refill (still in transit). In event time the gap is three days old, so a wait counted in event time
        // alone had run out and the level jump read as under-infusion; counted from when the gap arrived, it holds.
        var p = new PumpScript();
        p.Start(rate: 1.0, level: 10);
        p.RunSensorPump(days: 4, rate: 1.0, deviation: _ => 0, noiseSd: 0.02, rng: new Random(3), startLevel: 10);

        p.ReceiveAt = p.Now.AddDays(3);
        var refillSeq = p.Skip();
        var refill = Refill(p.Now, 6, 6, 19);
        p.RunSensorPump(days: 3, rate: 1.0, deviation: _ => 0, noiseSd: 0.02, rng: new Random(4), startLevel: 19);
        Assert.Equal(p.ReceiveAt, p.Now);
        Assert.DoesNotContain(p.Decisions.OfType<AnomalyDetected>(), d => d.Kind is AnomalyKinds.OverInfusion or AnomalyKinds.UnderInfusion or AnomalyKinds.RefillDiscrepancy);

        // The refill arrives a day later; the re-fold decides on complete data, and nothing is found then either.
        p.ReceiveAt = p.Now.AddDays(1);
        p.Late(refill, refillSeq);
        p.ReceiveAt = null;
        p.RunSensorPump(days: 2, rate: 1.0, deviation: _ => 0, noiseSd: 0.02, rng: new Random(5), startLevel: 16);
        Assert.DoesNotContain(p.Decisions.OfType<AnomalyDetected>(), d => d.Kind is AnomalyKinds.OverInfusion or AnomalyKinds.UnderInfusion or AnomalyKinds.RefillDiscrepancy);
    }

    [Fact]
    public void ARefillInTransit_WithItsNewPrescription_RaisesNoRefillMismatch()
    {
        // Refilled at a new strength and reprogrammed for it in the same visit; the refill event is late. The
        // prescription alone disagrees with the old reservoir: refill-safety waits for the missing seq like flow.
        var p = new PumpScript();
        p.Batch(
            new PrescriptionSet { Seq = 0, At = T0, Drug = "baclofen", Concentration = new Concentration { Value = 500, Unit = "mcg/mL" }, Mode = "continuous", RateMlPerDay = 0.8 },
            new RefillPerformed { Seq = 0, At = T0, ExpectedResidualMl = 0, AspiratedResidualMl = 0, AddedMl = 15, Drug = "baclofen", Concentration = new Concentration { Value = 500, Unit = "mcg/mL" } },
            Running(T0));
        p.Now = T0.AddDays(30);
        var refillSeq = p.Skip();
        var refill = new RefillPerformed { Seq = 0, At = p.Now, ExpectedResidualMl = 2, AspiratedResidualMl = 2, AddedMl = 15, Drug = "baclofen", Concentration = new Concentration { Value = 2000, Unit = "mcg/mL" } };
        p.Batch(new PrescriptionSet { Seq = 0, At = p.Now, Drug = "baclofen", Concentration = new Concentration { Value = 2000, Unit = "mcg/mL" }, Mode = "continuous", RateMlPerDay = 0.2 });
        Assert.Empty(p.Opened(AnomalyKinds.RefillMismatch));

        p.Now = p.Now.AddDays(1);
        p.Late(refill, refillSeq);
        Assert.Empty(p.Opened(AnomalyKinds.RefillMismatch));
        Assert.Empty(p.Opened(AnomalyKinds.DoseAboveLimit));
    }

    [Fact]
    public void APocketFillFoundAtALateRefill_IsDatedAtTheRefill_AndRaisedWhenItArrived()
    {
        AnomalyDetected Run(bool late)
        {
            var p = new PumpScript();
            p.Start(rate: 0.5, level: 18);
            p.Now = T0.AddDays(20);
            var refill = Refill(p.Now, 8, 4, 18);   // 4 mL less came back than expected: a possible pocket fill
            if (!late)
            {
                p.Batch(refill, Dose(p.Now, p.Now.AddHours(1), 0.02));
                return Assert.Single(p.Opened(AnomalyKinds.RefillDiscrepancy));
            }

            var seq = p.Skip();
            p.Batch(Dose(p.Now, p.Now.AddHours(1), 0.02));
            p.Now = p.Now.AddDays(1);
            Assert.Empty(p.Opened(AnomalyKinds.RefillDiscrepancy));
            p.Late(refill, seq);
            return Assert.Single(p.Opened(AnomalyKinds.RefillDiscrepancy));
        }

        var inOrder = Run(late: false);
        var delayed = Run(late: true);
        Assert.Equal(T0.AddDays(20), inOrder.At);
        Assert.Equal(inOrder.At, delayed.At);   // the same event time of the evidence in either order
        Assert.Equal(T0.AddDays(21), delayed.RaisedAt);   // decided when the refill arrived, a day later
        Assert.Equal((inOrder.Severity, inOrder.Summary), (delayed.Severity, delayed.Summary));
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
