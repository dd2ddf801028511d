using PumpFleet.Domain.Statistics;

namespace PumpFleet.Dashboard.Tests;

public sealed class GammaTests
{
    // Reference values: R's pgamma/qgamma and mpmath.gammainc (shape a, rate 1); the quantiles agree with the classical Garwood tables.
    [Theory]
    [InlineData(3, 2, 0.3233235838)]
    [InlineData(5, 10, 0.9707473119)]
    [InlineData(1, 1, 0.6321205588)]
    [InlineData(0.5, 0.1, 0.3452791)]
    [InlineData(20, 25, 0.8664251659)]
    public void LowerRegularized_MatchesReferenceValues(double a, double x, double expected) =>
        Assert.Equal(expected, Gamma.LowerRegularized(a, x), 6);

    [Theory]
    [InlineData(1, 0.025, 0.02531781)]
    [InlineData(1, 0.975, 3.688879)]
    [InlineData(2, 0.975, 5.571643)]
    [InlineData(5, 0.025, 1.623486)]
    [InlineData(6, 0.975, 11.66833)]
    [InlineData(10, 0.025, 4.795389)]
    [InlineData(11, 0.975, 18.39036)]
    [InlineData(100, 0.5, 99.66687)]
    public void InverseLowerRegularized_MatchesReferenceQuantiles(double a, double p, double expected) =>
        Assert.Equal(expected, Gamma.InverseLowerRegularized(a, p), 4);

    [Fact]
    public void PoissonInterval_IsGarwoods()
    {
        var zero = ExactIntervals.Poisson(0);
        Assert.Equal(0, zero.Lower);
        Assert.Equal(3.688879, zero.Upper, 4);
        var five = ExactIntervals.Poisson(5);
        Assert.Equal(1.623486, five.Lower, 4);
        Assert.Equal(11.66833, five.Upper, 4);
        var ten = ExactIntervals.Poisson(10);
        Assert.Equal(4.795389, ten.Lower, 4);
        Assert.Equal(18.39036, ten.Upper, 4);
    }

    [Fact]
    public void InverseLowerRegularized_RoundTrips()
    {
        foreach (var a in new[] { 0.3, 1.0, 2.5, 7.0, 40.0, 400.0 })
        {
            foreach (var p in new[] { 0.001, 0.025, 0.5, 0.975, 0.999 })
            {
                Assert.Equal(p, Gamma.LowerRegularized(a, Gamma.InverseLowerRegularized(a, p)), 9);
            }
        }
    }

    [Fact]
    public void LogGamma_MatchesFactorials()
    {
        Assert.Equal(Math.Log(24), Gamma.LogGamma(5), 12);
        Assert.Equal(Math.Log(Math.Sqrt(Math.PI)), Gamma.LogGamma(0.5), 12);
    }
}
