using PumpFleet.Domain.Statistics;

namespace PumpFleet.Domain.Tests;

public sealed class BenjaminiHochbergTests
{
    [Fact]
    public void Adjust_GivesTheStepUpAdjustedValues_InInputOrder()
    {
        // Sorted 0.005, 0.01, 0.03, 0.04 → p·m/rank 0.02, 0.02, 0.04, 0.04, then the running minimum from the top.
        var q = BenjaminiHochberg.Adjust([0.01, 0.04, 0.03, 0.005]);
        Assert.Equal([0.02, 0.04, 0.04, 0.02], q.Select(x => Math.Round(x, 12)));
    }

    [Fact]
    public void Adjust_IsMonotoneInP_AndCappedAtOne()
    {
        var q = BenjaminiHochberg.Adjust([0.9, 0.8, 0.001]);
        Assert.Equal(0.003, q[2], 12);
        Assert.Equal(0.9, q[0], 12);   // rank 3 of 3: 0.9 · 3/3
        Assert.Equal(0.9, q[1], 12);   // rank 2: min(0.8 · 3/2 = 1.2, 0.9)
        Assert.Empty(BenjaminiHochberg.Adjust([]));
    }

    [Fact]
    public void Adjust_RejectsValuesOutsideZeroOne() =>
        Assert.Throws<ArgumentOutOfRangeException>(() => BenjaminiHochberg.Adjust([0.5, 1.5]));
}
