using Npgsql;
using PumpFleet.Contracts.Events;
using PumpFleet.Contracts.Grains;
using PumpFleet.Contracts.Json;
using PumpFleet.EventStore;
using static PumpFleet.Grains.Tests.Ev;

namespace PumpFleet.Grains.Tests;

/// <summary>
/// A stale activation (another writer appended to its stream behind its back: a duplicate activation during a
/// membership change) must not fail its commands: the concurrency conflict re-reads the stream and decides again,
/// once, and every later call works. The other writer here is the event store used directly, on the real database.
/// </summary>
public sealed class StaleActivationTests(PumpClusterFixture fx) : IClassFixture<PumpClusterFixture>
{
    private static string NewSerial() => "SA" + Guid.NewGuid().ToString("N")[..10];

    private async Task AppendBehindTheGrainAsync(string serial, PumpEvent e)
    {
        await using var ds = NpgsqlDataSource.Create(fx.Cluster.ConnectionString);
        var store = new NpgsqlEventStore(ds);
        long version = 0;
        await foreach (var s in store.ReadStreamAsync(serial, 0, TestContext.Current.CancellationToken))
        {
            version = s.Version;
        }

        await store.AppendAsync(serial, version,
            [new EventToAppend(Guid.NewGuid(), EventTypes.NameOf(e), EventJson.Serialize(e), null, null, DateTimeOffset.UtcNow)],
            TestContext.Current.CancellationToken);
    }

    private async Task<string> OpenSilentAnomalyAsync(string serial)
    {
        var view = await fx.Cluster.Grains.GetGrain<IPumpQueryGrain>(serial).GetStateAsync();
        Assert.True(await fx.Cluster.Grains.GetGrain<IPumpMonitorGrain>(serial).MarkSilentAsync(view.LastSeenAt!.Value, TimeSpan.FromHours(1)));
        view = await fx.Cluster.Grains.GetGrain<IPumpQueryGrain>(serial).GetStateAsync();
        return Assert.Single(view.OpenAnomalies).Id;
    }

    [Fact]
    public async Task Pair_OnAStaleActivation_RereadsAndPairs_AndLaterCallsWork()
    {
        var serial = NewSerial();
        var g = fx.Cluster.Grains.GetGrain<IPumpIngestGrain>(serial);
        await g.PairAsync("H1", "test");
        await AppendBehindTheGrainAsync(serial, new PumpPaired { At = T0, HubId = "H2", By = "other" });

        await g.PairAsync("H3", "test");

        var view = await fx.Cluster.Grains.GetGrain<IPumpQueryGrain>(serial).GetStateAsync();
        Assert.Equal(("H3", 3L), (view.HubId, view.Version));
        var r = await g.IngestAsync(new IngestBatch { HubId = "H3", ReceivedAt = T0.AddDays(1), Device = Device20, Events = [Continuous(1, T0, 0.5)] });
        Assert.Equal(1, r.Stored);
    }

    [Fact]
    public async Task Acknowledge_OnAStaleActivation_DecidesAgainOnTheCurrentStream()
    {
        var serial = NewSerial();
        await fx.Cluster.Grains.GetGrain<IPumpIngestGrain>(serial).PairAsync("H1", "test");
        var id = await OpenSilentAnomalyAsync(serial);
        await AppendBehindTheGrainAsync(serial, new AnomalyAcknowledged { At = T0, AnomalyId = id, By = "dr.other" });
        var anomalies = fx.Cluster.Grains.GetGrain<IPumpAnomalyGrain>(serial);

        // The stale state says open; the stream says acknowledged by someone else: nothing to do, and no failure.
        Assert.False(await anomalies.AcknowledgeAnomalyAsync(id, "dr.me", null));
        var view = await fx.Cluster.Grains.GetGrain<IPumpQueryGrain>(serial).GetStateAsync();
        Assert.Equal(("acknowledged", "dr.other"), (view.OpenAnomalies[0].Status, view.OpenAnomalies[0].AcknowledgedBy));

        Assert.True(await anomalies.ResolveAnomalyAsync(id, "dr.me", "seen"));
        Assert.Empty((await fx.Cluster.Grains.GetGrain<IPumpQueryGrain>(serial).GetStateAsync()).OpenAnomalies);
    }

    [Fact]
    public async Task ResolveAndMarkSilent_OnAStaleActivation_DecideAgain()
    {
        var serial = NewSerial();
        await fx.Cluster.Grains.GetGrain<IPumpIngestGrain>(serial).PairAsync("H1", "test");
        var id = await OpenSilentAnomalyAsync(serial);

        // Resolved behind the grain: the grain's resolve finds nothing left to resolve.
        await AppendBehindTheGrainAsync(serial, new AnomalyResolved { At = T0, AnomalyId = id, By = "dr.other" });
        Assert.False(await fx.Cluster.Grains.GetGrain<IPumpAnomalyGrain>(serial).ResolveAnomalyAsync(id, "dr.me", null));

        // Another silent anomaly opened behind the grain: marking silent again finds it open.
        var silent = new AnomalyDetected
        {
            At = T0, AnomalyId = serial + ":silent:other", Kind = "silent", Severity = "warning", Summary = "silent",
            Evidence = new Dictionary<string, double>(StringComparer.Ordinal) { ["lastSeenAtUnixSeconds"] = 0 },
        };
        await AppendBehindTheGrainAsync(serial, silent);
        var view = await fx.Cluster.Grains.GetGrain<IPumpQueryGrain>(serial).GetStateAsync();
        Assert.False(await fx.Cluster.Grains.GetGrain<IPumpMonitorGrain>(serial).MarkSilentAsync(view.LastSeenAt!.Value, TimeSpan.FromHours(1)));
        view = await fx.Cluster.Grains.GetGrain<IPumpQueryGrain>(serial).GetStateAsync();
        Assert.Equal(serial + ":silent:other", Assert.Single(view.OpenAnomalies).Id);
    }
}
