using PumpFleet.Domain.Statistics;

namespace PumpFleet.Domain.Tests;

public sealed class ImplantAgeTests
{
    private static readonly DateTimeOffset Implant = new(2025, 1, 1, 0, 0, 0, TimeSpan.Zero);

    [Fact]
    public void Split_APumpCrossingTheSixMonthBoundary_GivesEachBandItsOwnDays()
    {
        // Followed from 150 to 250 days after implant: 32.625 days in 0-6 months, 67.375 in 6-12 months.
        var parts = ImplantAge.Split(Implant, Implant.AddDays(150), Implant.AddDays(250));
        Assert.Equal(2, parts.Count);
        Assert.Equal("0-6 months", parts[0].Band);
        Assert.Equal(32.625, parts[0].Days, 9);
        Assert.Equal("6-12 months", parts[1].Band);
        Assert.Equal(67.375, parts[1].Days, 9);
    }

    [Fact]
    public void Split_FollowUpFromBeforeImplantToYearThree_CoversEveryBandOnce_AndAddsUp()
    {
        var from = Implant.AddDays(-20);   // a trial pump that was then implanted
        var to = Implant.AddDays(1000);
        var parts = ImplantAge.Split(Implant, from, to);
        Assert.Equal(["not implanted", "0-6 months", "6-12 months", "1-2 years", "2-5 years"], parts.Select(p => p.Band));
        Assert.Equal(20, parts[0].Days, 9);
        Assert.Equal(182.625, parts[1].Days, 9);
        Assert.Equal(182.625, parts[2].Days, 9);
        Assert.Equal(365.25, parts[3].Days, 9);
        Assert.Equal(1000 - 730.5, parts[4].Days, 9);
        Assert.Equal((to - from).TotalDays, parts.Sum(p => p.Days), 9);
    }

    [Fact]
    public void Split_WithoutImplantDate_IsAllNotImplanted_AndAnEmptySpanIsNothing()
    {
        Assert.Equal([("not implanted", 3.0)], ImplantAge.Split(null, Implant, Implant.AddDays(3)));
        Assert.Empty(ImplantAge.Split(Implant, Implant.AddDays(3), Implant.AddDays(3)));
        Assert.Equal([("5+ years", 10.0)], ImplantAge.Split(Implant, Implant.AddDays(2000), Implant.AddDays(2010)));
    }

    [Theory]
    [InlineData(-1, "not implanted")]
    [InlineData(0, "0-6 months")]
    [InlineData(182.624, "0-6 months")]
    [InlineData(182.625, "6-12 months")]
    [InlineData(365.25, "1-2 years")]
    [InlineData(730.5, "2-5 years")]
    [InlineData(1826.25, "5+ years")]
    public void BandAt_PutsTheBoundaryInTheOlderBand(double days, string band) =>
        Assert.Equal(band, ImplantAge.BandAt(Implant, Implant.AddDays(days)));
}
