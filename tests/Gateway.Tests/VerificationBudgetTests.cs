using Microsoft.Extensions.Time.Testing;
using PumpFleet.Gateway.Hubs;

namespace PumpFleet.Gateway.Tests;

/// <summary>The budget of unproven credential checks and the memory of verified passwords, on a fake clock.</summary>
public sealed class VerificationBudgetTests
{
    [Fact]
    public void Budget_GivesItsBurst_ThenRefuses_AndRefillsAtItsRate()
    {
        var time = new FakeTimeProvider();
        var budget = new VerificationBudget(time, perSecond: 2, burst: 3);
        Assert.True(budget.TryTake());
        Assert.True(budget.TryTake());
        Assert.True(budget.TryTake());
        Assert.False(budget.TryTake());

        time.Advance(TimeSpan.FromMilliseconds(400)); // 0.8 token: not yet
        Assert.False(budget.TryTake());
        time.Advance(TimeSpan.FromMilliseconds(100)); // 1.0
        Assert.True(budget.TryTake());
        Assert.False(budget.TryTake());

        time.Advance(TimeSpan.FromHours(1)); // refills to the burst, never beyond
        Assert.Equal(3, budget.Available, 6);
    }

    [Fact]
    public void Budget_ATokenGivenBack_CanBeTakenAgain_ButNeverAboveTheBurst()
    {
        var time = new FakeTimeProvider();
        var budget = new VerificationBudget(time, perSecond: 0.1, burst: 2);
        Assert.True(budget.TryTake());
        Assert.True(budget.TryTake());
        Assert.False(budget.TryTake());
        budget.Return(); // that check succeeded: only failures spend the budget
        Assert.True(budget.TryTake());
        budget.Return();
        budget.Return();
        budget.Return();
        Assert.Equal(2, budget.Available, 6);
    }

    [Fact]
    public void Budget_RefusesNonsense()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => new VerificationBudget(TimeProvider.System, 0, 10));
        Assert.Throws<ArgumentOutOfRangeException>(() => new VerificationBudget(TimeProvider.System, 1, 0.5));
    }

    [Fact]
    public void Verified_RecallsOnlyTheSamePasswordOfTheSameHub()
    {
        var time = new FakeTimeProvider();
        var verified = new VerifiedCredentials(time, TimeSpan.FromMinutes(10));
        verified.Remember("hub-a", "right", "stored-a");

        Assert.Equal("stored-a", verified.Recall("hub-a", "right"));
        Assert.Null(verified.Recall("hub-a", "wrong"));
        Assert.Null(verified.Recall("hub-a", null));
        Assert.Null(verified.Recall("hub-a", ""));
        Assert.Null(verified.Recall("hub-b", "right"));
    }

    [Fact]
    public void Verified_Expires_UnlessUsed_AndIsForgottenOnAChange()
    {
        var time = new FakeTimeProvider();
        var verified = new VerifiedCredentials(time, TimeSpan.FromMinutes(10));
        verified.Remember("hub-a", "right", "stored-a");
        verified.Remember("hub-b", "other", "stored-b");

        time.Advance(TimeSpan.FromMinutes(9));
        Assert.Equal("stored-a", verified.Recall("hub-a", "right")); // slides: valid for 10 more minutes
        time.Advance(TimeSpan.FromMinutes(9));
        Assert.Equal("stored-a", verified.Recall("hub-a", "right"));
        Assert.Null(verified.Recall("hub-b", "other")); // 18 min unused: expired
        Assert.Equal(1, verified.Count);

        verified.Forget("hub-a"); // rotated or revoked
        Assert.Null(verified.Recall("hub-a", "right"));
        Assert.Equal(0, verified.Count);
    }

    [Fact]
    public void Verified_WithZeroTtl_RemembersNothing()
    {
        var verified = new VerifiedCredentials(new FakeTimeProvider(), TimeSpan.Zero);
        verified.Remember("hub-a", "right", "stored-a");
        Assert.Null(verified.Recall("hub-a", "right"));
        Assert.Equal(0, verified.Count);
    }
}
