using System.Text.Json;
using PumpFleet.Contracts.Events;
using PumpFleet.Domain.Detection;
using PumpFleet.Domain.Pumps;
using static PumpFleet.Detection.Tests.PumpScript;

namespace PumpFleet.Detection.Tests;

/// <summary>refill-mismatch, dose-above-limit, ziconotide titration and refill-due, through the fold and the engine.</summary>
public sealed class RefillSafetyTests
{
    private static PrescriptionSet RxOf(DateTimeOffset at, string drug, double conc, string unit, double rate) => new()
    {
        Seq = 0, At = at, Drug = drug, Concentration = new Concentration { Value = conc, Unit = unit }, Mode = "continuous", RateMlPerDay = rate,
    };

    private static RefillPerformed Fill(DateTimeOffset at, string drug, double conc, string unit, double residual = 5) => new()
    {
        Seq = 0, At = at, ExpectedResidualMl = residual, AspiratedResidualMl = residual, AddedMl = 15, Drug = drug,
        Concentration = new Concentration { Value = conc, Unit = unit },
    };

    [Fact]
    public void WrongConcentrationRefill_OpensOneCriticalMismatch_WithPrescribedAndRefilled()
    {
        var p = new PumpScript();
        p.Batch(RxOf(T0, "baclofen", 500, "mcg/mL", 0.8), Fill(T0, "baclofen", 500, "mcg/mL", 0), Running(T0));
        Assert.Empty(p.Opened(AnomalyKinds.RefillMismatch));

        p.Now = T0.AddDays(30);
        p.Batch(Fill(T0.AddDays(30), "Gablofen", 2000, "mcg/mL"));
        var opened = Assert.Single(p.Opened(AnomalyKinds.RefillMismatch));
        Assert.Equal("critical", opened.Severity);
        Assert.Equal(500, opened.Evidence["prescribedConcentrationMcgPerMl"]);
        Assert.Equal(2000, opened.Evidence["refilledConcentrationMcgPerMl"]);
        Assert.Equal(4, opened.Evidence["concentrationRatio"]);
        Assert.Equal(1600, opened.Evidence["actualMcgPerDay"], 6);
        Assert.Equal(0, opened.Evidence["drugMismatch"]);
        Assert.Contains("4× the prescribed dose", opened.Summary, StringComparison.Ordinal);

        // Later batches do not reopen it; reprogramming to what is in the reservoir resolves it.
        p.Batch(Dose(T0.AddDays(30), T0.AddDays(30).AddHours(1), 0.03));
        Assert.Single(p.Opened(AnomalyKinds.RefillMismatch));
        p.Now = T0.AddDays(30).AddHours(2);
        p.Batch(RxOf(T0.AddDays(30).AddHours(2), "baclofen", 2, "mg/mL", 0.2));
        Assert.Null(p.Open(AnomalyKinds.RefillMismatch));
    }

    [Fact]
    public void SameDrugUnderAnotherNameAndUnit_IsNoMismatch()
    {
        var p = new PumpScript();
        p.Batch(RxOf(T0, "Infumorph + Marcaine", 10, "mg/mL", 0.3), Fill(T0, "bupivacaine/morphine", 10_000, "mcg/mL", 0), Running(T0));
        Assert.Empty(p.Opened(AnomalyKinds.RefillMismatch));
    }

    [Fact]
    public void WrongDrugOrUnknownDrug_IsAMismatch_AndTheUnknownIsFlagged()
    {
        var p = new PumpScript();
        p.Batch(RxOf(T0, "morphine", 10, "mg/mL", 0.3), Fill(T0, "hydromorphone", 10, "mg/mL", 0), Running(T0));
        var wrong = Assert.Single(p.Opened(AnomalyKinds.RefillMismatch));
        Assert.Equal(1, wrong.Evidence["drugMismatch"]);
        Assert.Equal(0, wrong.Evidence["refilledDrugUnknown"]);

        var q = new PumpScript("P-2");
        q.Batch(RxOf(T0, "morphine", 10, "mg/mL", 0.3), Fill(T0, "house mix 7", 10, "mg/mL", 0), Running(T0));
        var unknown = Assert.Single(q.Opened(AnomalyKinds.RefillMismatch));
        Assert.Equal(1, unknown.Evidence["refilledDrugUnknown"]);
        Assert.Contains("not in the drug vocabulary", unknown.Summary, StringComparison.Ordinal);
    }

    [Fact]
    public void RefillAndReprogrammingInOneBatch_AreComparedWithEachOther()
    {
        var p = new PumpScript();
        p.Batch(RxOf(T0, "baclofen", 500, "mcg/mL", 0.8), Fill(T0, "baclofen", 500, "mcg/mL", 0), Running(T0));
        p.Now = T0.AddDays(30);
        p.Batch(Fill(T0.AddDays(30), "baclofen", 1000, "mcg/mL"), RxOf(T0.AddDays(30).AddMinutes(5), "baclofen", 1000, "mcg/mL", 0.4));
        Assert.Empty(p.Opened(AnomalyKinds.RefillMismatch));
    }

    [Theory]
    [InlineData("Prialt", 100, "mcg/mL", 0.25, "critical")]        // 25 mcg/day > 19.2
    [InlineData("Baclofen", 2, "mg/mL", 0.6, "critical")]           // 1200 mcg/day > 1000
    [InlineData("clonidine + baclofen", 2000, "mcg/mL", 0.6, null)] // baclofen not primary: the concentration is clonidine's
    [InlineData("morphine", 25, "mg/mL", 1.0, "warning")]           // 25 mg/day > 20 mg/day caution
    [InlineData("morphine", 10, "mg/mL", 1.0, null)]                // 10 mg/day
    [InlineData("hydromorphone", 10, "mg/mL", 1.0, null)]           // no labelled limit
    public void DoseAboveLimit_ByNormalisedDrug(string drug, double conc, string unit, double rate, string? severity)
    {
        var p = new PumpScript();
        p.Batch(RxOf(T0, drug, conc, unit, rate), Fill(T0, drug, conc, unit, 0), Running(T0));
        var opened = p.Opened(AnomalyKinds.DoseAboveLimit).ToList();
        if (severity is null)
        {
            Assert.Empty(opened);
            return;
        }

        Assert.Equal(severity, Assert.Single(opened).Severity);
        Assert.True(opened[0].Evidence["ratioToLimit"] > 1);
        Assert.Equal(0, opened[0].Evidence["titration"]);
    }

    [Fact]
    public void DoseAboveLimit_ResolvesWhenThePrescriptionComesBackWithinTheLimit()
    {
        var p = new PumpScript();
        p.Batch(RxOf(T0, "ziconotide", 25, "mcg/mL", 0.9), Fill(T0, "ziconotide", 25, "mcg/mL", 0), Running(T0));
        Assert.Equal(22.5, Assert.Single(p.Opened(AnomalyKinds.DoseAboveLimit)).Evidence["dailyDoseMcg"], 6);
        p.Now = T0.AddHours(1);
        p.Batch(RxOf(T0.AddHours(1), "ziconotide", 25, "mcg/mL", 0.7));
        Assert.Null(p.Open(AnomalyKinds.DoseAboveLimit));
    }

    [Fact]
    public void Ziconotide_StepAbove2Point4_OrAFourthIncreaseInAWeek_IsTooFast()
    {
        var p = new PumpScript();
        p.Batch(RxOf(T0, "ziconotide", 25, "mcg/mL", 0.096), Fill(T0, "ziconotide", 25, "mcg/mL", 0), Running(T0)); // 2.4 mcg/day
        Assert.Empty(p.Opened(AnomalyKinds.DoseAboveLimit));

        // +2.4 mcg/day steps on days 2, 4, 6 are within the label; a 4th increase on day 6.5 is not.
        foreach (var (day, rate) in new[] { (2.0, 0.192), (4.0, 0.288), (6.0, 0.384) })
        {
            p.Now = T0.AddDays(day);
            p.Batch(RxOf(p.Now, "ziconotide", 25, "mcg/mL", rate));
        }

        Assert.Empty(p.Opened(AnomalyKinds.DoseAboveLimit));
        p.Now = T0.AddDays(6.5);
        p.Batch(RxOf(p.Now, "ziconotide", 25, "mcg/mL", 0.40));
        var often = Assert.Single(p.Opened(AnomalyKinds.DoseAboveLimit));
        Assert.Equal("warning", often.Severity);
        Assert.Equal(1, often.Evidence["titration"]);
        Assert.Equal(4, often.Evidence["increasesIn7Days"]);

        // A week later, one step of +5 mcg/day: too big.
        var q = new PumpScript("P-2");
        q.Batch(RxOf(T0, "ziconotide", 25, "mcg/mL", 0.2), Fill(T0, "ziconotide", 25, "mcg/mL", 0), Running(T0));
        q.Now = T0.AddDays(7);
        q.Batch(RxOf(q.Now, "ziconotide", 25, "mcg/mL", 0.4));
        var big = Assert.Single(q.Opened(AnomalyKinds.DoseAboveLimit));
        Assert.Equal(5, big.Evidence["stepMcgPerDay"], 6);
    }

    [Fact]
    public void ZiconotideRules_DriveTheRefillDueDate()
    {
        var p = new PumpScript(capacityMl: 20);
        p.Batch(RxOf(T0, "Prialt", 25, "mcg/mL", 0.1), Fill(T0, "Prialt", 25, "mcg/mL", 0) with { AddedMl = 20 }, Running(T0));

        // 20 mL at 0.1 mL/day would last ~180 days; the first refill of a naive pump is due within 14 days.
        Assert.Equal(T0.AddDays(14), p.State.ToView().NextRefillDueAt);
        p.Now = T0.AddDays(13);
        p.Batch(Fill(T0.AddDays(13), "Prialt", 25, "mcg/mL", 18.7));
        Assert.Equal(T0.AddDays(13 + 84), p.State.ToView().NextRefillDueAt);

        // Diluted (5 mcg/mL): every 40 days.
        p.Now = T0.AddDays(50);
        p.Batch(Fill(T0.AddDays(50), "ziconotide", 5, "mcg/mL", 15), RxOf(T0.AddDays(50), "ziconotide", 5, "mcg/mL", 0.1));
        Assert.Equal(T0.AddDays(90), p.State.ToView().NextRefillDueAt);

        // Morphine: the ledger's forecast alone.
        var m = new PumpScript("P-3");
        m.Start(rate: 0.5);
        Assert.Equal(m.State.ForecastReaching(m.State.LowReservoirThresholdMl), m.State.ToView().NextRefillDueAt);
    }

    [Fact]
    public void BaclofenSeverity_ComesFromTheNormalisedDrug()
    {
        var p = new PumpScript();
        p.Start(rate: 0.5, drug: "Lioresal", level: 3, lowAlarm: 2);
        var depletion = Assert.Single(p.Opened(AnomalyKinds.DepletionRisk));
        Assert.Equal("critical", depletion.Severity);
        Assert.Equal(1, depletion.Evidence["baclofen"]);
    }

    [Fact]
    public void SafetyState_SurvivesASnapshotRoundTrip()
    {
        var p = new PumpScript();
        p.Batch(RxOf(T0, "ziconotide", 25, "mcg/mL", 0.096), Fill(T0, "ziconotide", 25, "mcg/mL", 0), Running(T0));
        p.Now = T0.AddDays(2);
        p.Batch(RxOf(p.Now, "ziconotide", 25, "mcg/mL", 0.3));
        var json = JsonSerializer.Serialize(p.State, SnapshotJson.Options);
        var restored = JsonSerializer.Deserialize<PumpState>(json, SnapshotJson.Options)!;
        Assert.Equal(json, JsonSerializer.Serialize(restored, SnapshotJson.Options));
        Assert.Equal(p.State.Detectors.Safety.ZiconotideRefillDueBy, restored.Detectors.Safety.ZiconotideRefillDueBy);
        Assert.Equal(p.State.Detectors.Safety.TitrationViolationAt, restored.Detectors.Safety.TitrationViolationAt);
        Assert.Single(restored.Detectors.Safety.ZiconotideIncreases!);

        // Restored and live state decide the same: nothing new after the round trip.
        Assert.Empty(AnomalyEngine.Evaluate(restored, p.Options));
    }
}
