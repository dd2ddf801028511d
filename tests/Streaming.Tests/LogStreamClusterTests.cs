using System.Collections.Concurrent;
using Npgsql;
using Orleans.Streams;
using Orleans.TestingHost;
using PumpFleet.EventStore;
using PumpFleet.TestSupport;

namespace PumpFleet.Streaming.Tests;

/// <summary>One two-silo cluster with the provider on one database, shared by the tests of this class (unique streams per test).</summary>
public sealed class LogStreamClusterFixture(PostgresFixture pg) : IAsyncLifetime
{
    private NpgsqlDataSource? _ds;

    /// <summary>The cluster.</summary>
    public InProcessTestCluster Cluster { get; private set; } = null!;

    /// <summary>The database's data source.</summary>
    public NpgsqlDataSource DataSource => _ds!;

    /// <summary>A store on the cluster's database (the tests append through it, as a grain would).</summary>
    public NpgsqlEventStore Store { get; private set; } = null!;

    /// <inheritdoc />
    public async ValueTask InitializeAsync()
    {
        var cs = await StreamCluster.CreateDatabaseAsync(pg, "ls");
        _ds = NpgsqlDataSource.Create(cs);
        Store = new NpgsqlEventStore(_ds);
        Cluster = await StreamCluster.StartAsync(cs, silos: 2);
    }

    /// <inheritdoc />
    public async ValueTask DisposeAsync()
    {
        await Cluster.DisposeAsync();
        if (_ds is not null)
        {
            await _ds.DisposeAsync();
        }
    }
}

/// <summary>The log stream provider on a two-silo in-process cluster against real PostgreSQL.</summary>
public sealed class LogStreamClusterTests(LogStreamClusterFixture fx) : IClassFixture<LogStreamClusterFixture>
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(90);

    [Fact]
    public async Task EachPumpsEvents_ArriveOnItsStream_InVersionOrder_WithoutASecondWrite()
    {
        var streams = Enumerable.Range(0, 6).Select(i => StreamCluster.NewStreamId("ORD" + i)).ToList();
        var versions = new long[streams.Count];
        for (var round = 0; round < 5; round++)
        {
            for (var i = 0; i < streams.Count; i++)
            {
                versions[i] = (await StreamCluster.AppendAsync(fx.Store, streams[i], versions[i], 4)).NextExpectedVersion;
            }
        }

        await Eventually.TrueAsync(() => Task.FromResult(streams.All(s => Recorder.DistinctVersions(s).Length == 20)), Timeout,
            "every stream's 20 events delivered");
        foreach (var s in streams)
        {
            AssertInOrderWithoutGaps(Recorder.Versions(s), 20);
        }

        // The provider only reads: the log holds exactly the appended rows.
        await using var cmd = fx.DataSource.CreateCommand("SELECT count(*) FROM pf_events WHERE stream_id = ANY($1)");
        cmd.Parameters.Add(new() { Value = streams.ToArray() });
        Assert.Equal(120L, (long)(await cmd.ExecuteScalarAsync(TestContext.Current.CancellationToken))!);
    }

    [Fact]
    public async Task AConsumer_CanSubscribeFromAnEarlierToken()
    {
        var s = StreamCluster.NewStreamId("REW");
        await StreamCluster.AppendAsync(fx.Store, s, 0, 10);
        await Eventually.TrueAsync(() => Task.FromResult(Recorder.DistinctVersions(s).Length == 10), Timeout, "the first 10 delivered");
        var token4 = Recorder.ByStream[s].First(x => x.Version == 4).Token;

        var received = new ConcurrentQueue<(long Version, StreamSequenceToken? Token)>();
        var stream = fx.Cluster.Client.GetStreamProvider(LogStreams.ProviderName).GetStream<CommittedEvent>(LogStreams.ForStream(s));
        var handle = await stream.SubscribeAsync((e, t) =>
        {
            received.Enqueue((e.Version, t));
            return Task.CompletedTask;
        }, token4);
        try
        {
            await Eventually.TrueAsync(() => Task.FromResult(received.Select(x => x.Version).Distinct().Count() >= 7), Timeout,
                "versions 4..10 replayed to the rewinding subscriber");
            await StreamCluster.AppendAsync(fx.Store, s, 10, 2);
            await Eventually.TrueAsync(() => Task.FromResult(received.Any(x => x.Version == 12)), Timeout, "new events follow the replay");
            Assert.Equal([4, 5, 6, 7, 8, 9, 10, 11, 12], received.Select(x => x.Version).Distinct().Order());
            AssertInOrderWithoutGaps(received.Select(x => x.Version).ToArray(), 12, first: 4);
            // The tokens the subscriber got are the ones the implicit consumer got: a rewind is a replay of the same log positions.
            Assert.Equal(token4, received.First().Token);
        }
        finally
        {
            await handle.UnsubscribeAsync();
        }
    }

    [Fact]
    public async Task ThePartitionsLiveStream_CarriesOnlyTheLiveTypes_InOrder_AndAPageArrivesAsOneDelivery()
    {
        const int partition = 5;
        var s = StreamCluster.NewStreamIdIn("LIVE", partition);
        var received = new ConcurrentQueue<(string StreamId, long Version, string Type, StreamSequenceToken? Token)>();
        var stream = fx.Cluster.Client.GetStreamProvider(LogStreams.ProviderName).GetStream<CommittedEvent>(LogStreams.ForLive(partition));
        var handle = await stream.SubscribeAsync(batch =>
        {
            // A batch observer sees what one delivery carried.
            foreach (var item in batch)
            {
                received.Enqueue((item.Item.StreamId, item.Item.Version, item.Item.Type, item.Token));
            }

            Deliveries.Enqueue(batch.Count);
            return Task.CompletedTask;
        });
        try
        {
            // One append of 40 doses with an anomaly, an alarm and a status report among them: one page.
            var types = Enumerable.Range(1, 40).Select(i => i switch { 7 => "anomaly.detected", 19 => "alarm.raised", 33 => "status", _ => "dose.delivered" }).ToList();
            await fx.Store.AppendAsync(s, 0, [.. types.Select(t => new EventToAppend(Guid.NewGuid(), t, "{}", null, null, DateTimeOffset.UtcNow))],
                TestContext.Current.CancellationToken);

            await Eventually.TrueAsync(() => Task.FromResult(received.Count(x => x.StreamId == s) >= 3), Timeout, "the three live events delivered");
            var mine = received.Where(x => x.StreamId == s).ToList();
            Assert.Equal([(7L, "anomaly.detected"), (19L, "alarm.raised"), (33L, "status")], mine.Select(x => (x.Version, x.Type)).Distinct());
            Assert.All(mine, x => Assert.Equal(2, x.Token!.EventIndex));
            // The pump's own stream had all 40, in order (the implicit recorder).
            await Eventually.TrueAsync(() => Task.FromResult(Recorder.DistinctVersions(s).Length == 40), Timeout, "the pump's 40 events delivered");
            AssertInOrderWithoutGaps(Recorder.Versions(s), 40);

            // The stream's first page may come as two deliveries: the agent starts a new stream's consumers from its first
            // token, and a cursor from a token gives that event alone first (LogQueueCache). A later page is one delivery.
            Deliveries.Clear();
            await fx.Store.AppendAsync(s, 40, [.. types.Select(t => new EventToAppend(Guid.NewGuid(), t, "{}", null, null, DateTimeOffset.UtcNow))],
                TestContext.Current.CancellationToken);
            await Eventually.TrueAsync(() => Task.FromResult(received.Count(x => x.StreamId == s) >= 6), Timeout, "the next three live events delivered");
            Assert.Equal([47L, 59L, 73L], received.Where(x => x.StreamId == s).Select(x => x.Version).Where(v => v > 40).Distinct());
            Assert.Contains(Deliveries, n => n >= 3);
        }
        finally
        {
            await handle.UnsubscribeAsync();
        }
    }

    private static readonly ConcurrentQueue<int> Deliveries = new();

    [Fact]
    public async Task ALateCommittingTransaction_IsDelivered_InCommitSafeOrder()
    {
        const int partition = 9;
        var late = StreamCluster.NewStreamIdIn("LATE", partition);
        var early = StreamCluster.NewStreamIdIn("EARLY", partition);
        var ct = TestContext.Current.CancellationToken;

        await using (var slow = await fx.DataSource.OpenConnectionAsync(ct))
        {
            await using var tx = await slow.BeginTransactionAsync(ct);
            await using (var insert = new NpgsqlCommand(
                "INSERT INTO pf_events (stream_id, version, event_id, event_type, received_at, data) VALUES ($1, 1, gen_random_uuid(), 'test.late', now(), '{}')", slow, tx))
            {
                insert.Parameters.Add(new() { Value = late });
                await insert.ExecuteNonQueryAsync(ct);
            }

            // A later append commits first, above the open transaction's lower position; the receivers are polling
            // and notified meanwhile.
            await StreamCluster.AppendAsync(fx.Store, early, 0, 2);
            await tx.CommitAsync(ct);
        }

        await Eventually.TrueAsync(() => Task.FromResult(Recorder.DistinctVersions(late).Length == 1 && Recorder.DistinctVersions(early).Length == 2),
            Timeout, "both transactions delivered on their streams");
        await Eventually.TrueAsync(() => Task.FromResult(PartitionOrder(partition, late, early).Length >= 3), Timeout,
            "both transactions delivered on the partition stream");
        Assert.Equal([(late, 1L), (early, 1L), (early, 2L)], PartitionOrder(partition, late, early).Distinct());
    }

    private static (string, long)[] PartitionOrder(int partition, params string[] streams) =>
        Recorder.ByPartition.TryGetValue(partition.ToString(System.Globalization.CultureInfo.InvariantCulture), out var q)
            ? q.Where(x => streams.Contains(x.StreamId)).Select(x => (x.StreamId, x.Version)).ToArray()
            : [];

    /// <summary>
    /// At-least-once in order: every delivery is either the next version or a replay of one already seen (after a
    /// queue moved); never a jump past a version not yet delivered.
    /// </summary>
    internal static void AssertInOrderWithoutGaps(long[] arrivals, long last, long first = 1)
    {
        var max = first - 1;
        foreach (var v in arrivals)
        {
            Assert.True(v <= max + 1, $"version {v} arrived before {max + 1}: {string.Join(",", arrivals)}");
            max = Math.Max(max, v);
        }

        Assert.Equal(last, max);
    }
}
