using PumpFleet.Domain.Drugs;

namespace PumpFleet.Domain.Tests.Drugs;

public sealed class DrugVocabularyTests
{
    [Theory]
    [InlineData("baclofen", "baclofen")]
    [InlineData("Baclofen", "baclofen")]
    [InlineData("  BACLOFEN ", "baclofen")]
    [InlineData("Lioresal", "baclofen")]
    [InlineData("Lioresal Intrathecal", "baclofen")]
    [InlineData("Gablofen", "baclofen")]
    [InlineData("Prialt", "ziconotide")]
    [InlineData("Infumorph", "morphine")]
    [InlineData("Duramorph", "morphine")]
    [InlineData("Morphine PF", "morphine")]
    [InlineData("morphine   sulfate", "morphine")]
    [InlineData("Dilaudid", "hydromorphone")]
    [InlineData("hydromorphone HCl", "hydromorphone")]
    public void Normalize_BrandCaseAndForm_GiveTheGenericName(string text, string generic)
    {
        var d = DrugVocabulary.Normalize(text);
        Assert.False(d.Unknown);
        Assert.Equal([generic], d.Components);
        Assert.False(d.IsAdmixture);
    }

    [Theory]
    [InlineData("morphine + bupivacaine")]
    [InlineData("Morphine/Bupivacaine")]
    [InlineData("Infumorph & Marcaine")]
    [InlineData("morphine with bupivacaine")]
    public void Normalize_Admixtures_GiveEveryComponent_PrimaryFirst(string text)
    {
        var d = DrugVocabulary.Normalize(text);
        Assert.False(d.Unknown);
        Assert.True(d.IsAdmixture);
        Assert.Equal(["morphine", "bupivacaine"], d.Components);
        Assert.Equal("morphine", d.Primary);
        Assert.Equal("morphine + bupivacaine", d.Canonical);
    }

    [Fact]
    public void SameDrugsAs_IgnoresOrderAndNames_ButNotComponents()
    {
        var a = DrugVocabulary.Normalize("morphine + bupivacaine");
        Assert.True(a.SameDrugsAs(DrugVocabulary.Normalize("Marcaine/Infumorph")));
        Assert.False(a.SameDrugsAs(DrugVocabulary.Normalize("morphine")));
        Assert.False(a.SameDrugsAs(DrugVocabulary.Normalize("morphine + clonidine")));
    }

    [Theory]
    [InlineData("unobtainium")]
    [InlineData("morphine + mysterymix")]
    [InlineData("")]
    [InlineData("   ")]
    [InlineData(null)]
    public void Normalize_NamesOutsideTheVocabulary_AreAnExplicitUnknown(string? text)
    {
        Assert.True(DrugVocabulary.Normalize(text).Unknown);
    }

    [Fact]
    public void UnknownDrugs_MatchOnlyThemselves()
    {
        var x = DrugVocabulary.Normalize("Compounded Mix A");
        Assert.True(x.SameDrugsAs(DrugVocabulary.Normalize("compounded mix a")));
        Assert.False(x.SameDrugsAs(DrugVocabulary.Normalize("Compounded Mix B")));
        Assert.Contains("(unknown)", x.ToString(), StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("baclofen", true)]
    [InlineData("Baclofen", true)]
    [InlineData("Gablofen", true)]
    [InlineData("clonidine + baclofen", true)]
    [InlineData("morphine", false)]
    [InlineData("baclofenx", false)]
    [InlineData(null, false)]
    public void WithdrawalCritical_IsBaclofenAloneOrInAnAdmixture(string? drug, bool critical) =>
        Assert.Equal(critical, DrugName.IsWithdrawalCritical(drug));
}
