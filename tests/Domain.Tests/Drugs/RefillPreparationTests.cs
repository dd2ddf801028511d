using PumpFleet.Contracts.Events;
using PumpFleet.Domain.Drugs;

namespace PumpFleet.Domain.Tests.Drugs;

public sealed class RefillPreparationTests
{
    [Theory]
    [InlineData(20, 10, "mg/mL", 200, "mg")]
    [InlineData(40, 2000, "mcg/mL", 80000, "mcg")]
    [InlineData(20, 25, "µg/mL", 500, "mcg")]
    [InlineData(20, 0.5, "mg/mL", 10, "mg")]
    public void TheReservoirFull_AtThePrescribedConcentration(double capacity, double value, string unit, double amount, string amountUnit)
    {
        var prep = RefillPreparation.For(capacity, new Concentration { Value = value, Unit = unit })!;
        Assert.Equal(capacity, prep.FillVolumeMl);
        Assert.Equal(amount, prep.DrugAmount!.Value, 9);
        Assert.Equal(amountUnit, prep.AmountUnit);
    }

    [Fact]
    public void AnUnknownUnit_GivesTheVolumeButNoAmount()
    {
        var prep = RefillPreparation.For(20, new Concentration { Value = 3, Unit = "units/mL" })!;
        Assert.Equal(20, prep.FillVolumeMl);
        Assert.Null(prep.DrugAmount);
        Assert.Null(prep.AmountUnit);
    }

    [Fact]
    public void NoCapacity_NoPreparation()
    {
        Assert.Null(RefillPreparation.For(null, new Concentration { Value = 10, Unit = "mg/mL" }));
        Assert.Null(RefillPreparation.For(0, null));
        Assert.Equal(20, RefillPreparation.For(20, null)!.FillVolumeMl);
    }
}
