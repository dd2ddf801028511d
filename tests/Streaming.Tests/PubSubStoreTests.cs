using System.Collections.Concurrent;
using Npgsql;
using Orleans.Streams;
using PumpFleet.EventStore;
using PumpFleet.EventStore.Log;
using PumpFleet.TestSupport;

namespace PumpFleet.Streaming.Tests;

/// <summary>Explicit subscriptions kept in PostgreSQL (PubSubStore, migration 033) outlive the silo that held them.</summary>
public sealed class PubSubStoreTests(PostgresFixture pg)
{
    [Fact]
    public async Task AClientsSubscriptions_SurviveASiloKill_WithoutSubscribingAgain()
    {
        var ct = TestContext.Current.CancellationToken;
        var cs = await StreamCluster.CreateDatabaseAsync(pg, "ps");
        await using var ds = NpgsqlDataSource.Create(cs);
        var store = new NpgsqlEventStore(ds);
        await using var cluster = await StreamCluster.StartAsync(cs, silos: 2, persistentPubSub: true);

        // One explicit subscription per partition stream, from the client, as the dashboard's live feed holds them.
        var observer = new CountingObserver();
        var provider = cluster.Client.GetStreamProvider(LogStreams.ProviderName);
        foreach (var id in LogStreams.AllPartitions())
        {
            await provider.GetStream<CommittedEvent>(id).SubscribeAsync(observer);
        }

        // The pub-sub grains wrote their subscribers to pf_orleans_storage.
        await using (var cmd = ds.CreateCommand("SELECT count(*) FROM pf_orleans_storage WHERE payload IS NOT NULL"))
        {
            Assert.True((long)(await cmd.ExecuteScalarAsync(ct))! >= LogPartitioning.Count, "a stored pub-sub state per partition stream");
        }

        var before = Enumerable.Range(0, LogPartitioning.Count).Select(p => StreamCluster.NewStreamIdIn($"PSB{p}", p)).ToList();
        foreach (var s in before)
        {
            await StreamCluster.AppendAsync(store, s, 0, 3);
        }

        await Eventually.TrueAsync(() => Task.FromResult(before.All(s => observer.Distinct(s) == 3)), TimeSpan.FromSeconds(90),
            "every partition's events delivered to the client's subscriptions");

        // Kill the second silo: about half the pub-sub grains and queues were there. Nothing subscribes again.
        await cluster.KillSiloAsync(cluster.Silos[1], ct);
        var after = Enumerable.Range(0, LogPartitioning.Count).Select(p => StreamCluster.NewStreamIdIn($"PSA{p}", p)).ToList();
        foreach (var s in after)
        {
            await StreamCluster.AppendAsync(store, s, 0, 3);
        }

        await Eventually.TrueAsync(() => Task.FromResult(after.All(s => observer.Distinct(s) == 3)), TimeSpan.FromSeconds(180),
            "every partition's events after the kill delivered through the same subscriptions");
    }

    private sealed class CountingObserver : IAsyncObserver<CommittedEvent>
    {
        private readonly ConcurrentDictionary<string, ConcurrentDictionary<long, byte>> _seen = new();

        public int Distinct(string streamId) => _seen.TryGetValue(streamId, out var v) ? v.Count : 0;

        public Task OnNextAsync(CommittedEvent item, StreamSequenceToken? token = null)
        {
            _seen.GetOrAdd(item.StreamId, _ => new()).TryAdd(item.Version, 0);
            return Task.CompletedTask;
        }

        public Task OnCompletedAsync() => Task.CompletedTask;

        public Task OnErrorAsync(Exception ex) => Task.CompletedTask;
    }
}
