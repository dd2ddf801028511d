using System.Text;
using PumpFleet.Simulator.Faults;
using PumpFleet.Simulator.Generation;

namespace PumpFleet.Simulator.Tests;

public sealed class DeterminismTests
{
    private static SimulatorOptions Busy(int seed) => new()
    {
        Pumps = 25,
        Duration = TimeSpan.FromDays(6),
        Seed = seed,
        FaultRateMultiplier = 300,
        OfflineRatePerHubDay = 0.5,
        ClockResetRatePerPumpYear = 20,
        TrialFraction = 0.2,
    };

    private static string Stream(SimulatorOptions o)
    {
        var sb = new StringBuilder();
        foreach (var item in new FleetGenerator(o).Generate())
        {
            switch (item)
            {
                case PumpBatch b:
                    sb.Append(b.Topic).Append(' ').Append(b.ToJson()).Append('\n');
                    break;
                case FaultInjected f:
                    sb.Append(GroundTruthWriter.ToJson(f.Record)).Append('\n');
                    break;
                case HubConnectivityChanged c:
                    sb.Append(c.HubId).Append(c.Online ? " online " : " offline ").Append(c.At.UtcTicks).Append('\n');
                    break;
            }
        }

        return sb.ToString();
    }

    [Fact]
    public void SameSeed_GivesByteIdenticalStream()
    {
        var a = Stream(Busy(42));
        var b = Stream(Busy(42));
        Assert.True(a.Length > 10_000);
        Assert.Equal(a, b);
    }

    [Fact]
    public void DifferentSeed_GivesDifferentStream()
    {
        Assert.NotEqual(Stream(Busy(42)), Stream(Busy(43)));
    }

    [Fact]
    public void Stream_IsOrderedBySimulatedTime()
    {
        var last = DateTimeOffset.MinValue;
        foreach (var item in new FleetGenerator(Busy(5)).Generate())
        {
            Assert.True(item.At >= last, $"{item} before {last}");
            last = item.At;
        }
    }
}
