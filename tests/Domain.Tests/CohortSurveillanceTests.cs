using PumpFleet.Domain.Statistics;

namespace PumpFleet.Domain.Tests;

public sealed class CohortSurveillanceTests
{
    private static CohortCounts Cohort(long pumps, double days, long events, long affected) => new(pumps, days, [new MeasureCount(events, affected)]);

    [Fact]
    public void Screen_GivesRatesPer1000PumpDays_AndProportions_WithExactIntervals()
    {
        var r = CohortSurveillance.Screen([Cohort(10, 2000, 5, 4), Cohort(90, 18000, 9, 6)], 3, 0.05);
        var a = r[0][0];
        Assert.Equal(2.5, a.Rate!.Value, 10);                        // 5 events / 2000 pump-days × 1000
        Assert.Equal(1000 * 1.623486 / 2000, a.RateLower!.Value, 4);  // Garwood for 5
        Assert.Equal(1000 * 11.66833 / 2000, a.RateUpper!.Value, 4);
        Assert.Equal(0.5, a.RestRate!.Value, 10);                    // 9 / 18000 × 1000
        Assert.Equal(0.4, a.Proportion!.Value, 10);
        Assert.Equal(ExactIntervals.ClopperPearson(4, 10), new Interval(a.ProportionLower!.Value, a.ProportionUpper!.Value));
        Assert.Equal(6.0 / 90, a.RestProportion!.Value, 10);
        Assert.Equal(PoissonTest.UpperTail(5, 1.0), a.RateP!.Value, 12);   // expected = 0.5/1000 × 2000 = 1
        Assert.Equal(ExactIntervals.BinomialUpperTail(4, 10, 6.0 / 90), a.ProportionP!.Value, 12);
    }

    [Fact]
    public void Screen_AdjustsEveryTestTogether_SoAnUncorrectedHitAmongManyDoesNotSignal()
    {
        // 40 equal cohorts and one whose p ≈ 0.02 on its own: significant uncorrected, not after Benjamini–Hochberg.
        var cohorts = Enumerable.Range(0, 40).Select(_ => Cohort(20, 1000, 3, 3)).Append(Cohort(20, 1000, 8, 3)).ToList();
        var r = CohortSurveillance.Screen(cohorts, 3, 0.05);
        var odd = r[^1][0];
        Assert.True(odd.RateP < 0.05, $"p = {odd.RateP}");
        Assert.True(odd.RateQ >= 0.05, $"q = {odd.RateQ}");
        Assert.False(odd.Signal);
    }

    [Fact]
    public void Screen_SignalsAStrongCohort_AndNeverTestsBelowTheMinimumCount()
    {
        var cohorts = Enumerable.Range(0, 20).Select(_ => Cohort(20, 1000, 1, 1)).Append(Cohort(20, 1000, 25, 12)).ToList();
        var r = CohortSurveillance.Screen(cohorts, 3, 0.05);
        Assert.True(r[^1][0].Signal);
        Assert.True(r[^1][0].ProportionQ < 0.05);
        Assert.Null(r[0][0].RateP);   // 1 event < 3: not a test
        Assert.Null(r[0][0].RateQ);
        Assert.False(r[0][0].Signal);
    }

    [Fact]
    public void Screen_WithoutExposure_LeavesRatesOpen_AndRefusesABadRate()
    {
        var r = CohortSurveillance.Screen([Cohort(1, 0, 0, 0)], 3, 0.05);
        Assert.Null(r[0][0].Rate);
        Assert.Null(r[0][0].RestRate);
        Assert.Throws<ArgumentOutOfRangeException>(() => CohortSurveillance.Screen([], 3, 0));
        Assert.Throws<ArgumentOutOfRangeException>(() => CohortSurveillance.Screen([], 3, 1.5));
    }
}
