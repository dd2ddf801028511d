using PumpFleet.Domain.Statistics;

namespace PumpFleet.Domain.Tests;

public sealed class KaplanMeierTests
{
    // The textbook example: remission times (weeks) of the 21 leukaemia patients on 6-mercaptopurine (Freireich
    // et al. 1963, as in Kalbfleisch & Prentice and Klein & Moeschberger); "+" censored. Expected values: R's
    // survfit(Surv(time, status) ~ 1, conf.type = "log-log"), survival and Greenwood standard error to 4 places,
    // the band to 3.
    private static readonly (double Time, bool Event)[] SixMp =
    [
        (6, true), (6, true), (6, true), (6, false), (7, true), (9, false), (10, true), (10, false), (11, false), (13, true),
        (16, true), (17, false), (19, false), (20, false), (22, true), (23, true), (25, false), (32, false), (32, false),
        (34, false), (35, false),
    ];

    [Fact]
    public void Estimate_ReproducesTheSixMercaptopurineTable()
    {
        var curve = KaplanMeier.Estimate(SixMp.Select(x => new SurvivalObservation(x.Time, x.Event ? 1 : 0, x.Event ? 0 : 1)));
        var expected = new (double Time, long AtRisk, long Events, double S, double Se, double Lower, double Upper)[]
        {
            (6, 21, 3, 0.8571, 0.0764, 0.620, 0.952),
            (7, 17, 1, 0.8067, 0.0869, 0.563, 0.923),
            (10, 15, 1, 0.7529, 0.0963, 0.503, 0.889),
            (13, 12, 1, 0.6902, 0.1068, 0.432, 0.849),
            (16, 11, 1, 0.6275, 0.1141, 0.368, 0.805),
            (22, 7, 1, 0.5378, 0.1282, 0.268, 0.747),
            (23, 6, 1, 0.4482, 0.1346, 0.188, 0.680),
        };
        Assert.Equal(expected.Length, curve.Steps.Count);
        for (var i = 0; i < expected.Length; i++)
        {
            var (time, atRisk, events, s, se, lower, upper) = expected[i];
            var step = curve.Steps[i];
            Assert.Equal(time, step.Time);
            Assert.Equal(atRisk, step.AtRisk);
            Assert.Equal(events, step.Events);
            Assert.Equal(s, step.Survival, 4);
            Assert.Equal(se, step.StandardError, 4);
            Assert.Equal(lower, step.Lower, 3);
            Assert.Equal(upper, step.Upper, 3);
        }

        Assert.Equal(21, curve.Subjects);
        Assert.Equal(9, curve.Events);
        Assert.Equal(12, curve.Censored);
        Assert.Equal(35, curve.LastTime);
    }

    [Fact]
    public void Estimate_DoesNotDependOnInputOrder_AndMergesEqualTimes()
    {
        var shuffled = SixMp.OrderBy(x => (x.Time * 7919) % 13).Select(x => new SurvivalObservation(x.Time, x.Event ? 1 : 0, x.Event ? 0 : 1));
        var grouped = SixMp.GroupBy(x => x.Time).Select(g => new SurvivalObservation(g.Key, g.Count(x => x.Event), g.Count(x => !x.Event)));
        Assert.Equal(KaplanMeier.Estimate(shuffled).Steps, KaplanMeier.Estimate(grouped).Steps);
    }

    [Fact]
    public void Estimate_WithEveryoneFailing_EndsAtZero_AndWithNoEvents_HasNoSteps()
    {
        var all = KaplanMeier.Estimate([new(1, 1, 0), new(2, 2, 0)]);
        Assert.Equal(0, all.Steps[^1].Survival);
        Assert.Equal(0, all.Steps[^1].Lower);
        var none = KaplanMeier.Estimate([new(5, 0, 4)]);
        Assert.Empty(none.Steps);
        Assert.Equal(4, none.Censored);
        Assert.Empty(KaplanMeier.Estimate([]).Steps);
    }

    [Fact]
    public void Estimate_RefusesNegativeTimes() =>
        Assert.Throws<ArgumentOutOfRangeException>(() => KaplanMeier.Estimate([new(-1, 1, 0)]));

    [Theory]
    [InlineData(0.975, 1.959963985)]
    [InlineData(0.5, 0)]
    [InlineData(0.005, -2.575829304)]
    public void NormalQuantile_MatchesQnorm(double p, double expected) =>
        Assert.Equal(expected, KaplanMeier.NormalQuantile(p), 8);
}
