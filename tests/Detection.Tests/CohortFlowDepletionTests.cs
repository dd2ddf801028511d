using PumpFleet.Contracts.Events;
using PumpFleet.Contracts.Views;
using PumpFleet.Domain.Detection;
using PumpFleet.Domain.Pumps;
using static PumpFleet.Detection.Tests.PumpScript;

namespace PumpFleet.Detection.Tests;

/// <summary>
/// The corrected forecast where it matters: a pump of a lot whose refills revealed over-infusion takes the cohort's
/// factor in its own <c>depletion-risk</c> detector and refill-due date (pure fold and engine, event time only).
/// </summary>
public sealed class CohortFlowDepletionTests
{
    private const string Cohort = "cohort-flow:lot:L1";

    // A pump that really runs 30 % fast: 19 mL at 1 mL/day programmed, low-reservoir level 2 mL. By the programmed
    // rate it reaches 2 mL on day 17; in truth on day (19 − 2) / 1.3 = 13.1.
    private static PumpScript Pump()
    {
        var p = new PumpScript();
        p.Start(rate: 1.0, level: 19, lowAlarm: 2);
        return p;
    }

    private static void Tell(PumpScript p, double? factor, DateTimeOffset at)
    {
        p.Platform(factor is { } f
            ? new FlowCorrectionChanged { At = at, AnomalyId = Cohort + ":7", Cohort = Cohort, Factor = f, Since = at }
            : new FlowCorrectionChanged { At = at });
        foreach (var d in AnomalyEngine.EvaluateDepletion(p.State, p.Options, at))
        {
            p.Platform(d);
            p.Decisions.Add(d);
        }
    }

    // Day by day (one dose report a day, as the pump's motor reports it), the first day depletion-risk is open.
    private static int? FirstAlertDay(PumpScript p, int toDay, int from = 1)
    {
        for (var day = from; day <= toDay; day++)
        {
            p.Now = T0.AddDays(day);
            p.Batch(Dose(T0.AddDays(day - 1), p.Now, 1.0));
            if (p.Open(AnomalyKinds.DepletionRisk) is not null)
            {
                return day;
            }
        }

        return null;
    }

    [Fact]
    public void PumpOfAFlaggedLot_RaisesDepletionRiskEarlier_BeforeItReallyRunsLow()
    {
        var plain = Pump();
        var corrected = Pump();
        Assert.Null(FirstAlertDay(corrected, 5));
        Tell(corrected, 1.3, T0.AddDays(5));

        // Uncorrected: 72 h before the programmed-rate date (day 14), a day after the pump really ran low (day 13.1).
        Assert.Equal(14, FirstAlertDay(plain, 17));

        // Corrected: level 19 − 1.3 d, falling at 1.3 mL/day: within 72 h from day 10.08, so on day 11's report.
        Assert.Equal(11, FirstAlertDay(corrected, 17, from: 6));
        var a = Assert.Single(corrected.Opened(AnomalyKinds.DepletionRisk));
        Assert.Equal(1, a.Evidence["flowCorrected"]);
        Assert.Equal(1.3, a.Evidence["cohortFlowFactor"]);
        Assert.Equal(Math.Round((19 - 14.3 - 2) / 1.3 * 24, 1), a.Evidence["hoursToThreshold"]);
        Assert.Equal(144, a.Evidence["uncorrectedHoursToThreshold"]);
        Assert.Contains("lot L1's flow factor 1.300", a.Summary, StringComparison.Ordinal);
        Assert.Contains(Cohort + ":7", a.Summary, StringComparison.Ordinal);
        Assert.True(T0.AddDays(11) < T0.AddDays(17.0 / 1.3), "warned before it really ran low");
    }

    [Fact]
    public void ResolvingTheCohortWarning_ReturnsToTheUncorrectedForecast()
    {
        var p = Pump();
        Tell(p, 1.3, T0);
        Assert.Equal(11, FirstAlertDay(p, 12));
        var corrected = p.State.ToView();
        Assert.Equal(RefillDueSources.CohortFlow, corrected.NextRefillDueSource);

        // The warning resolved (the job tells the pump to drop the factor): 6 days left at the programmed rate.
        Tell(p, null, T0.AddDays(11));
        Assert.Null(p.Open(AnomalyKinds.DepletionRisk));
        var r = Assert.Single(p.Decisions.OfType<AnomalyResolved>());
        Assert.True(r.Automatic);

        var view = p.State.ToView();
        Assert.Null(view.FlowCorrection);
        Assert.Equal(RefillDueSources.Ledger, view.NextRefillDueSource);
        Assert.Equal(view.LowReservoirAt, view.NextRefillDueAt);
        Assert.Equal(T0.AddDays(17), view.NextRefillDueAt);

        // And the alert comes back on the programmed-rate schedule: 72 h before day 17.
        Assert.Equal(14, FirstAlertDay(p, 17, from: 12));
    }

    [Fact]
    public void RefillDueDate_TakesTheCorrectionOnlyWhenEarlier_AndSaysWhereItCameFrom()
    {
        var p = Pump();
        FirstAlertDay(p, 5);
        var plain = p.State.ToView();
        Assert.Equal(RefillDueSources.Ledger, plain.NextRefillDueSource);
        Assert.Equal(T0.AddDays(17), plain.NextRefillDueAt);

        p.Platform(new FlowCorrectionChanged { At = T0.AddDays(5), AnomalyId = Cohort + ":7", Cohort = Cohort, Factor = 1.3, Since = T0.AddDays(5) });
        var over = p.State.ToView();
        Assert.Equal(RefillDueSources.CohortFlow, over.NextRefillDueSource);
        Assert.InRange(over.NextRefillDueAt!.Value, T0.AddDays(17.0 / 1.3).AddSeconds(-1), T0.AddDays(17.0 / 1.3).AddSeconds(1));
        Assert.Equal(plain.NextRefillDueAt, over.UncorrectedNextRefillDueAt);

        p.Platform(new FlowCorrectionChanged { At = T0.AddDays(5), AnomalyId = Cohort + ":8", Cohort = Cohort, Factor = 0.8, Since = T0.AddDays(5) });
        var under = p.State.ToView();
        Assert.Equal(RefillDueSources.Ledger, under.NextRefillDueSource);
        Assert.Equal(plain.NextRefillDueAt, under.NextRefillDueAt);
        Assert.True(under.FlowCorrection!.NextRefillDueAt > under.NextRefillDueAt);
    }

    [Fact]
    public void Decision_IsIdempotent_AndTheSnapshotKeepsTheCorrection()
    {
        var p = Pump();
        var c = new Contracts.Grains.PumpFlowCorrection { AnomalyId = Cohort + ":7", Cohort = Cohort, Factor = 1.3, Since = T0 };
        var e = PumpDecisions.SetFlowCorrection(p.State, c, T0);
        Assert.NotNull(e);
        p.Platform(e);
        Assert.Null(PumpDecisions.SetFlowCorrection(p.State, c, T0));
        Assert.NotNull(PumpDecisions.SetFlowCorrection(p.State, c with { Factor = 1.25 }, T0));
        Assert.Throws<ArgumentException>(() => PumpDecisions.SetFlowCorrection(p.State, c with { Factor = 0 }, T0));

        var json = System.Text.Json.JsonSerializer.Serialize(p.State, SnapshotJson.Options);
        var back = System.Text.Json.JsonSerializer.Deserialize<PumpState>(json, SnapshotJson.Options)!;
        Assert.Equal(p.State.ToView().NextRefillDueAt, back.ToView().NextRefillDueAt);
        Assert.Equal(Cohort + ":7", back.FlowCorrection!.AnomalyId);

        var cleared = PumpDecisions.SetFlowCorrection(p.State, null, T0);
        Assert.NotNull(cleared);
        p.Platform(cleared);
        Assert.Null(PumpDecisions.SetFlowCorrection(p.State, null, T0));
    }
}
