using PumpFleet.Domain.Statistics;

namespace PumpFleet.Domain.Tests;

public sealed class ExactIntervalsTests
{
    // Reference values: for integer a, b, I_x(a, b) = P(Binomial(a + b − 1, x) ≥ a), summed exactly; the Clopper–Pearson
    // bounds solved on those exact binomial sums (they agree with R's binom.test); the Garwood tables.
    [Theory]
    [InlineData(2, 3, 0.5, 0.6875)]          // 11/16 exactly
    [InlineData(1, 1, 0.3, 0.3)]             // uniform
    [InlineData(0.5, 0.5, 0.25, 0.3333333333)] // arcsine law: (2/π)·asin(√x)
    [InlineData(10, 20, 0.4, 0.7853183898)]     // = P(Binomial(29, 0.4) ≥ 10)
    [InlineData(200, 300, 0.4, 0.5024286163)]   // = P(Binomial(499, 0.4) ≥ 200)
    public void Beta_Regularized_MatchesReferenceValues(double a, double b, double x, double expected) =>
        Assert.Equal(expected, Beta.Regularized(a, b, x), 6);

    [Theory]
    [InlineData(0, 10, 0, 0.3084971)]
    [InlineData(5, 10, 0.1870860, 0.8129140)]
    [InlineData(1, 20, 0.001265089, 0.2487328)]
    [InlineData(10, 10, 0.6915029, 1)]
    [InlineData(30, 1000, 0.02033049, 0.04255140)]
    public void ClopperPearson_MatchesBinomTest(long x, long n, double lower, double upper)
    {
        var ci = ExactIntervals.ClopperPearson(x, n);
        Assert.Equal(lower, ci.Lower, 6);
        Assert.Equal(upper, ci.Upper, 6);
    }

    [Theory]
    [InlineData(0, 0, 3.688879)]
    [InlineData(5, 1.623486, 11.66833)]
    [InlineData(10, 4.795389, 18.39036)]
    public void Poisson_IsGarwoods(long k, double lower, double upper)
    {
        var ci = ExactIntervals.Poisson(k);
        Assert.Equal(lower, ci.Lower, 4);
        Assert.Equal(upper, ci.Upper, 4);
    }

    [Fact]
    public void BinomialUpperTail_IsTheExactTail()
    {
        // P(X ≥ 3 | 10, 0.1) = 1 − (0.9¹⁰ + 10·0.1·0.9⁹ + 45·0.01·0.9⁸).
        var expected = 1 - (Math.Pow(0.9, 10) + (10 * 0.1 * Math.Pow(0.9, 9)) + (45 * 0.01 * Math.Pow(0.9, 8)));
        Assert.Equal(expected, ExactIntervals.BinomialUpperTail(3, 10, 0.1), 10);
        Assert.Equal(1, ExactIntervals.BinomialUpperTail(0, 10, 0.1));
        Assert.Equal(0, ExactIntervals.BinomialUpperTail(1, 10, 0));
        Assert.Equal(Math.Pow(0.5, 4), ExactIntervals.BinomialUpperTail(4, 4, 0.5), 12);
    }

    [Fact]
    public void Intervals_RefuseImpossibleInput()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => ExactIntervals.ClopperPearson(11, 10));
        Assert.Throws<ArgumentOutOfRangeException>(() => ExactIntervals.ClopperPearson(1, 0));
        Assert.Throws<ArgumentOutOfRangeException>(() => ExactIntervals.Poisson(-1));
        Assert.Throws<ArgumentOutOfRangeException>(() => ExactIntervals.Poisson(3, 1));
        Assert.Throws<ArgumentOutOfRangeException>(() => Beta.Regularized(1, 1, 1.5));
    }

    [Fact]
    public void BetaInverse_RoundTrips()
    {
        foreach (var (a, b) in new[] { (0.5, 0.5), (1.0, 3.0), (4.0, 40.0), (300.0, 20.0) })
        {
            foreach (var p in new[] { 0.001, 0.025, 0.5, 0.975, 0.999 })
            {
                Assert.Equal(p, Beta.Regularized(a, b, Beta.InverseRegularized(a, b, p)), 9);
            }
        }
    }
}
