using Microsoft.Extensions.Time.Testing;
using PumpFleet.Simulator.Generation;
using PumpFleet.Simulator.Transport;

namespace PumpFleet.Simulator.Tests;

public sealed class MqttTests
{
    [Fact]
    public async Task Fleet_OverRealBroker_DeliversEveryEvent_AndResendsAboveCommittedSeqAfterACut()
    {
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(TestContext.Current.CancellationToken);
        timeout.CancelAfter(TimeSpan.FromSeconds(45));
        var options = TestFleet.Quiet(pumps: 8, days: 3);
        options.Speed = 0;
        options.FleetSecret = FakePlatform.FleetSecret;
        options.ProgressInterval = TimeSpan.FromMilliseconds(200);
        options.DrainTimeout = TimeSpan.FromSeconds(20);
        var plan = new FleetGenerator(options).Plan;
        var target = plan.Hubs.First(h => h.Pumps.Count >= 2);

        await using var platform = await FakePlatform.StartAsync(target.HubId, timeout.Token);
        options.Broker = $"127.0.0.1:{platform.Port}";
        var simulator = new FleetSimulator();
        var result = await simulator.RunAsync(options, timeout.Token);

        // Every generated event arrived at least once.
        var expected = new FleetGenerator(options).GenerateBatches()
            .SelectMany(b => b.Events.Select(e => (b.Serial, e.Event.Seq))).ToList();
        Assert.Equal(expected.Count, result.EventsGenerated);
        var missing = expected.Where(k => !platform.Stored.ContainsKey(k)).ToList();
        Assert.Empty(missing);
        Assert.Equal(0, result.Unacked);

        // The cut happened mid-run, the hub came back, and what it (re)sent was above the committedSeq it had.
        Assert.True(platform.CutHappened);
        Assert.True(platform.Reconnected);
        Assert.True(result.Reconnects >= 1);
        Assert.NotEmpty(platform.Dropped);
        Assert.All(platform.AfterReconnect, e => Assert.True(e.Seq > platform.CommittedAtCut.GetValueOrDefault(e.Serial),
            $"{e.Serial} seq {e.Seq} resent although committedSeq was {platform.CommittedAtCut.GetValueOrDefault(e.Serial)}"));
        Assert.All(platform.Dropped, d => Assert.Contains(d, platform.AfterReconnect));
        Assert.True(result.EventsResent > 0);

        // device on every pump's first batch.
        Assert.Equal(plan.Pumps.Select(p => p.Serial).Order(StringComparer.Ordinal), platform.DeviceSeenFor.Distinct().Order(StringComparer.Ordinal));
    }

    [Fact]
    public async Task HubOutages_PublishTheLastWill_AndTheBacklogArrivesAfterwards()
    {
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(TestContext.Current.CancellationToken);
        timeout.CancelAfter(TimeSpan.FromSeconds(45));
        var options = TestFleet.Quiet(pumps: 6, days: 3);
        options.Speed = 0;
        options.FleetSecret = FakePlatform.FleetSecret;
        options.OfflineRatePerHubDay = 1;
        options.OfflineMeanDuration = TimeSpan.FromHours(5);
        options.DrainTimeout = TimeSpan.FromSeconds(20);
        var outages = new FleetGenerator(options).Generate().OfType<HubConnectivityChanged>().Where(c => !c.Online).ToList();
        Assert.NotEmpty(outages);

        await using var platform = await FakePlatform.StartAsync(targetHub: null, timeout.Token);
        options.Broker = $"127.0.0.1:{platform.Port}";
        var result = await new FleetSimulator().RunAsync(options, timeout.Token);

        var expected = new FleetGenerator(options).GenerateBatches().SelectMany(b => b.Events.Select(e => (b.Serial, e.Event.Seq)));
        Assert.All(expected, k => Assert.True(platform.Stored.ContainsKey(k), $"{k} missing"));
        Assert.Equal(0, result.Unacked);

        // The broker published the will when a hub dropped off, and the hub announced itself again afterwards.
        var hub = outages[0].HubId;
        var statuses = platform.Statuses.Where(s => s.Hub == hub).Select(s => s.Payload).ToList();
        var will = statuses.IndexOf("{\"online\":false}");
        Assert.True(will >= 0, string.Join(" | ", statuses));
        Assert.True(statuses.Count > will + 1, string.Join(" | ", statuses));
        Assert.Contains(statuses.Skip(will + 1), s => s.Contains("\"online\":true", StringComparison.Ordinal));
    }

    [Fact]
    public async Task WrongFleetSecret_IsRefusedByTheBroker_AndTheRunFails()
    {
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(TestContext.Current.CancellationToken);
        timeout.CancelAfter(TimeSpan.FromSeconds(30));
        await using var platform = await FakePlatform.StartAsync(targetHub: null, timeout.Token);
        var options = TestFleet.Quiet(pumps: 2, days: 1);
        options.Speed = 0;
        options.FleetSecret = "not-the-secret";
        options.Broker = $"127.0.0.1:{platform.Port}";
        var e = await Assert.ThrowsAsync<InvalidOperationException>(() => new FleetSimulator().RunAsync(options, timeout.Token));
        Assert.Contains("connect", e.Message, StringComparison.Ordinal);
        Assert.Empty(platform.Stored);
    }

    [Fact]
    public async Task ResumeAt_SendsWhatPrecedesItAtOnce_AndPacesWhatFollows()
    {
        // A restart against a kept database: the part of the fleet's history already stored is replayed without
        // waiting for simulated time, and the rest is paced. Real time never advances here (a fake clock), so
        // whatever arrives was sent unpaced, and a batch after ResumeAt can only arrive if pacing were skipped.
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(TestContext.Current.CancellationToken);
        timeout.CancelAfter(TimeSpan.FromSeconds(45));
        var options = TestFleet.Quiet(pumps: 4, days: 3);
        options.Speed = 3600;
        options.ResumeAt = options.Start.AddDays(2);
        options.FleetSecret = FakePlatform.FleetSecret;
        options.ProgressInterval = TimeSpan.FromMilliseconds(200);
        var batches = new FleetGenerator(options).GenerateBatches().ToList();
        var before = batches.Where(b => b.At <= options.ResumeAt).SelectMany(b => b.Events.Select(e => (b.Serial, e.Event.Seq))).ToList();
        var after = batches.Where(b => b.At > options.ResumeAt).SelectMany(b => b.Events.Select(e => (b.Serial, e.Event.Seq))).ToList();
        Assert.NotEmpty(before);
        Assert.NotEmpty(after);

        await using var platform = await FakePlatform.StartAsync(null, timeout.Token);
        options.Broker = $"127.0.0.1:{platform.Port}";
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(timeout.Token);
        var run = new FleetSimulator(timeProvider: new FakeTimeProvider(DateTimeOffset.UtcNow)).RunAsync(options, stop.Token);

        while (before.Any(k => !platform.Stored.ContainsKey(k)))
        {
            Assert.False(run.IsCompleted, "the run ended before it sent the stored part");
            await Task.Delay(50, timeout.Token);
        }

        Assert.DoesNotContain(after, platform.Stored.ContainsKey);
        await stop.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => run);
    }
}
