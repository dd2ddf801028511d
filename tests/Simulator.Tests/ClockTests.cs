using Microsoft.Extensions.Time.Testing;
using PumpFleet.Simulator.Time;

namespace PumpFleet.Simulator.Tests;

public sealed class ClockTests
{
    private static readonly DateTimeOffset Start = new(2026, 1, 1, 0, 0, 0, TimeSpan.Zero);

    [Fact]
    public void ScaledClock_RunsSpeedTimesFaster()
    {
        var time = new FakeTimeProvider();
        var clock = new ScaledSimulationClock(Start, speed: 86_400, time);
        time.Advance(TimeSpan.FromSeconds(1.5));
        Assert.Equal(Start.AddDays(1.5), clock.Now);
    }

    [Fact]
    public async Task ScaledClock_WaitCompletes_OnlyWhenSimulatedTimeIsReached()
    {
        var time = new FakeTimeProvider();
        var clock = new ScaledSimulationClock(Start, speed: 3600, time);
        var wait = clock.WaitUntilAsync(Start.AddHours(2), TestContext.Current.CancellationToken).AsTask();
        time.Advance(TimeSpan.FromSeconds(1));
        Assert.False(wait.IsCompleted);
        time.Advance(TimeSpan.FromSeconds(1));
        await wait.WaitAsync(TimeSpan.FromSeconds(10), TestContext.Current.CancellationToken);
        Assert.True(clock.Now >= Start.AddHours(2));
    }

    [Fact]
    public async Task UnpacedClock_JumpsToWhateverIsAwaited()
    {
        var clock = new UnpacedSimulationClock(Start);
        await clock.WaitUntilAsync(Start.AddDays(3), TestContext.Current.CancellationToken);
        Assert.Equal(Start.AddDays(3), clock.Now);
        await clock.WaitUntilAsync(Start.AddDays(1), TestContext.Current.CancellationToken);
        Assert.Equal(Start.AddDays(3), clock.Now);
    }
}
