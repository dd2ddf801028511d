using PumpFleet.Gateway.Hubs;

namespace PumpFleet.Gateway.Tests;

/// <summary>
/// The listening loop's wait until the next periodic re-check. Npgsql's <c>WaitAsync</c> takes whole milliseconds and
/// reads 0 as "no timeout": a remainder below 1 ms that truncated to 0 stopped the re-check until the next
/// notification (RevocationTests' periodic re-check test, which disables the notifications, then timed out).
/// </summary>
public sealed class HubRegistryWatcherTests
{
    [Theory]
    [InlineData(1L, 1)] // 0.0001 ms: truncation gave 0, i.e. wait forever
    [InlineData(4_000L, 1)] // 0.4 ms
    [InlineData(9_999L, 1)] // 0.9999 ms
    [InlineData(10_000L, 1)] // exactly 1 ms
    [InlineData(10_001L, 2)] // rounded up, never returns before the re-check is due
    [InlineData(19_996_000L, 2000)] // 1999.6 ms: a 2 s interval after a little work
    [InlineData(20_000_000L, 2000)]
    public void WaitTimeout_IsWholeMillisecondsRoundedUp_AndNeverZero(long ticks, int expected) =>
        Assert.Equal(expected, HubRegistryWatcher.WaitTimeout(TimeSpan.FromTicks(ticks)));

    [Fact]
    public void WaitTimeout_OfAVeryLongInterval_StaysAFiniteTimeout() =>
        Assert.Equal(int.MaxValue, HubRegistryWatcher.WaitTimeout(TimeSpan.FromDays(365)));

    [Fact]
    public void WaitTimeout_IsAlwaysPositive_AndNotShorterThanTheRemainder()
    {
        // Fixed seed: the same inputs on every run.
        var random = new Random(20261130);
        for (var i = 0; i < 10_000; i++)
        {
            var remaining = TimeSpan.FromTicks(random.NextInt64(1, TimeSpan.TicksPerMinute));
            var ms = HubRegistryWatcher.WaitTimeout(remaining);
            Assert.True(ms >= 1, $"{remaining.Ticks} ticks gave {ms} ms");
            Assert.True(TimeSpan.FromMilliseconds(ms) >= remaining, $"{remaining.Ticks} ticks gave {ms} ms");
        }
    }
}
