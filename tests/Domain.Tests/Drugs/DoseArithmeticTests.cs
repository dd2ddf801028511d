using PumpFleet.Contracts.Events;
using PumpFleet.Domain.Drugs;

namespace PumpFleet.Domain.Tests.Drugs;

public sealed class DoseArithmeticTests
{
    private static readonly DateTimeOffset T0 = new(2026, 3, 1, 0, 0, 0, TimeSpan.Zero);

    [Theory]
    [InlineData(10, "mg/mL", 10_000)]
    [InlineData(2000, "mcg/mL", 2000)]
    [InlineData(2000, "µg/mL", 2000)]
    [InlineData(25, "ug/ml", 25)]
    [InlineData(0.5, "MG / ML", 500)]
    [InlineData(1, "g/L", 1000)]
    public void ToMcgPerMl_NormalisesMassAndVolumeUnits(double value, string unit, double mcgPerMl) =>
        Assert.Equal(mcgPerMl, ConcentrationUnits.ToMcgPerMl(new Concentration { Value = value, Unit = unit })!.Value, 9);

    [Theory]
    [InlineData("units/mL")]
    [InlineData("mg")]
    [InlineData("%")]
    [InlineData("")]
    public void ToMcgPerMl_UnknownUnit_IsNull(string unit) =>
        Assert.Null(ConcentrationUnits.ToMcgPerMl(new Concentration { Value = 1, Unit = unit }));

    [Fact]
    public void Same_OneMgPerMlEqualsOneThousandMcgPerMl_ButNotTwoThousand()
    {
        var mg = ConcentrationUnits.ToMcgPerMl(new Concentration { Value = 1, Unit = "mg/mL" })!.Value;
        Assert.True(ConcentrationUnits.Same(mg, 1000));
        Assert.False(ConcentrationUnits.Same(mg, 2000));
    }

    [Fact]
    public void DailyDose_Continuous_IsRateTimesConcentration()
    {
        var rx = Rx("Prialt", 25, "mcg/mL") with { RateMlPerDay = 0.5 };
        var d = DailyDose.Of(rx);
        Assert.Equal(12.5, d.BasalMcgPerDay!.Value, 9);
        Assert.Equal(12.5, d.MaxMcgPerDay!.Value, 9);
        Assert.Equal("ziconotide", d.Drug.Primary);
    }

    [Fact]
    public void DailyDose_Flex_IntegratesTheScheduleOverTheDay()
    {
        // 06:00–18:00 at 0.8 mL/day, 18:00–06:00 at 0.4 mL/day: mean 0.6 mL/day × 2000 mcg/mL = 1200 mcg/day.
        var rx = Rx("baclofen", 2000, "mcg/mL") with
        {
            Mode = "flex", RateMlPerDay = null,
            Schedule = [new FlexStep { Start = "06:00", RateMlPerDay = 0.8 }, new FlexStep { Start = "18:00", RateMlPerDay = 0.4 }],
        };
        var d = DailyDose.Of(rx);
        Assert.Equal(0.6, d.VolumeMlPerDay, 9);
        Assert.Equal(1200, d.BasalMcgPerDay!.Value, 6);
    }

    [Fact]
    public void DailyDose_PatientBoluses_AddTheirDailyMaximum()
    {
        var rx = Rx("Infumorph", 10, "mg/mL") with { RateMlPerDay = 1.5, Bolus = new BolusSettings { DoseMl = 0.05, LockoutMin = 60, MaxPerDay = 4 } };
        var d = DailyDose.Of(rx);
        Assert.Equal(15_000, d.BasalMcgPerDay!.Value, 6);
        Assert.Equal(17_000, d.MaxMcgPerDay!.Value, 6);
    }

    [Fact]
    public void DailyDose_UnknownUnit_HasNoMass()
    {
        var d = DailyDose.Of(Rx("morphine", 10, "units/mL") with { RateMlPerDay = 1 });
        Assert.Null(d.BasalMcgPerDay);
        Assert.Equal(1, d.VolumeMlPerDay, 9);
    }

    [Fact]
    public void Limits_AreTheLabelledFiguresOfDomainNotes()
    {
        Assert.Equal(19.2, DoseLimits.ByDrug["ziconotide"].MaxMcgPerDay);
        Assert.Equal(1000, DoseLimits.ByDrug["baclofen"].MaxMcgPerDay);
        Assert.Equal(20_000, DoseLimits.ByDrug["morphine"].MaxMcgPerDay);
        Assert.Equal("warning", DoseLimits.ByDrug["morphine"].Severity);
        Assert.False(DoseLimits.ByDrug.ContainsKey("hydromorphone"));
    }

    [Fact]
    public void ZiconotideRefillRules_FirstWithin14Days_Then40Diluted_Or84Undiluted()
    {
        Assert.Equal(T0.AddDays(14), ZiconotideRefillRules.DueBy(T0, 1, 25));
        Assert.Equal(T0.AddDays(84), ZiconotideRefillRules.DueBy(T0, 2, 25));
        Assert.Equal(T0.AddDays(84), ZiconotideRefillRules.DueBy(T0, 3, 100));
        Assert.Equal(T0.AddDays(40), ZiconotideRefillRules.DueBy(T0, 2, 5));
        Assert.Equal(T0.AddDays(40), ZiconotideRefillRules.DueBy(T0, 2, null));
    }

    private static PrescriptionSet Rx(string drug, double value, string unit) => new()
    {
        Seq = 1, At = T0, Drug = drug, Concentration = new Concentration { Value = value, Unit = unit }, Mode = "continuous",
    };
}
