using PumpFleet.Domain.Statistics;

namespace PumpFleet.Domain.Tests.CohortFlow;

public sealed class SignTestTests
{
    [Theory]
    [InlineData(5, 5, 1.0 / 32)]
    [InlineData(3, 5, 0.5)]
    [InlineData(0, 5, 1.0)]
    [InlineData(6, 5, 0.0)]
    [InlineData(8, 10, 56.0 / 1024)]     // C(10,8)+C(10,9)+C(10,10) = 45+10+1
    [InlineData(2, 10, 1 - (11.0 / 1024))]  // the complement of P(X ≤ 1)
    [InlineData(60, 100, 0.028443966820490392)]
    public void UpperTail_IsTheExactBinomialHalfTail(int k, int n, double expected) =>
        Assert.Equal(expected, SignTest.UpperTail(k, n), 12);

    [Fact]
    public void UpperTail_StaysFiniteForLargeCohorts()
    {
        var extreme = SignTest.UpperTail(100_000, 100_000);
        Assert.True(extreme is >= 0 and < 1e-300);
        Assert.Equal(0.5, SignTest.UpperTail(50_001, 100_000) + (SignTest.UpperTail(50_000, 100_000) - SignTest.UpperTail(50_001, 100_000)) / 2, 2);
        Assert.True(SignTest.UpperTail(60_000, 100_000) < 1e-100);
        Assert.True(SignTest.UpperTail(40_000, 100_000) > 1 - 1e-12);
    }

    [Theory]
    [InlineData(5, 0)]     // P(X ≤ 0) = 1/32 > 0.025: five values cannot bound a median at 95 %
    [InlineData(6, 1)]     // 1/64 ≤ 0.025
    [InlineData(10, 2)]    // P(X ≤ 1) = 11/1024 ≤ 0.025 < P(X ≤ 2) = 56/1024
    public void MedianBoundRank_IsTheLargestRankWithinHalfAlpha(int n, int rank) =>
        Assert.Equal(rank, SignTest.MedianBoundRank(n, 0.05));

    [Fact]
    public void Median_OfOddAndEvenCounts()
    {
        Assert.Equal(2, SignTest.Median([1, 2, 9]));
        Assert.Equal(2.5, SignTest.Median([1, 2, 3, 9]));
        Assert.Throws<ArgumentException>(() => SignTest.Median([]));
    }
}
