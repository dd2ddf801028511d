using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Time.Testing;
using Npgsql;
using PumpFleet.EventStore.Log;
using PumpFleet.TestSupport;

namespace PumpFleet.EventStore.Tests;

public sealed class LogTailCacheTests(PostgresFixture pg) : EventStoreTestBase(pg)
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task LateCommittingTransaction_IsNeverAnsweredWithAHole_AndIsReadOnceTheCacheIsStale()
    {
        var time = new FakeTimeProvider(DateTimeOffset.UnixEpoch.AddDays(20000));
        var cache = new LogTailCache(Store, Store, new LogTailCacheOptions { MaxAge = TimeSpan.FromMilliseconds(50) }, time);
        var (slow, fast, partition) = TwoStreamsOfOnePartition();
        await Store.AppendAsync(NewStreamIn(partition), 0, [Evt(1)], Ct);
        var start = GlobalCheckpoint.Start;
        await Eventually.TrueAsync(async () =>
        {
            time.Advance(TimeSpan.FromSeconds(1)); // every poll reads PostgreSQL
            start = (await cache.ReadPartitionAsync(partition, GlobalCheckpoint.Start, 100, Ct)).Next;
            return start != GlobalCheckpoint.Start;
        }, TimeSpan.FromSeconds(20), "the first event to pass the xmin horizon");

        // T1 takes a lower global position but commits after T2, in the same partition.
        await using var t1 = await LateCommit.BeginAsync(DataSource, slow, Ct);

        await Store.AppendAsync(fast, 0, [Evt(1)], Ct);
        time.Advance(TimeSpan.FromSeconds(1));
        var whileOpen = await cache.ReadPartitionAsync(partition, start, 100, Ct);
        Assert.Empty(whileOpen.Events);
        Assert.Equal(start, whileOpen.Next);

        await t1.CommitAsync(Ct);

        // Within MaxAge the cache answers with what it read while T1 was open: nothing, never `fast` without `slow`.
        var fresh = await cache.ReadPartitionAsync(partition, start, 100, Ct);
        Assert.Empty(fresh.Events);
        Assert.Equal(1, cache.Hits);

        // The live path (the log stream's receivers) never takes an earlier read's end: read now, clock unmoved.
        GlobalPage afterCommit = whileOpen;
        await Eventually.TrueAsync(async () =>
        {
            afterCommit = await cache.ReadPartitionLatestAsync(partition, whileOpen.Next, 100, Ct);
            return afterCommit.Events.Count >= 2;
        }, TimeSpan.FromSeconds(20), "both committed events to pass the xmin horizon");
        Assert.Equal([slow, fast], afterCommit.Events.Select(e => e.StreamId));
        Assert.Equal(1, cache.Hits);

        // Another reader at the same position, within MaxAge of that read, gets the same page from the cache.
        var hits = cache.Hits;
        var second = await cache.ReadPartitionAsync(partition, whileOpen.Next, 100, Ct);
        Assert.Equal(afterCommit.Events.Select(e => e.Checkpoint), second.Events.Select(e => e.Checkpoint));
        Assert.Equal(hits + 1, cache.Hits);
        // A smaller page from the middle of the range: full, so answered from the cache whatever its age.
        time.Advance(TimeSpan.FromMinutes(1));
        var one = await cache.ReadPartitionAsync(partition, whileOpen.Next, 1, Ct);
        Assert.Equal(afterCommit.Events[0].Checkpoint, Assert.Single(one.Events).Checkpoint);
        Assert.Equal(hits + 2, cache.Hits);
    }

    [Fact]
    public async Task AReaderAheadOfTheRange_StartsANewOne_AndAReaderBehindItIsNeverAnsweredWithAHole()
    {
        // A reader can resume ahead of what this process has read: a queue that moved here from another silo with its
        // checkpoint. Its page must not be joined to the range (that would leave out what lies between).
        var time = new FakeTimeProvider(DateTimeOffset.UnixEpoch.AddDays(20000));
        var cache = new LogTailCache(Store, Store, new LogTailCacheOptions { MaxAge = TimeSpan.FromMilliseconds(50) }, time);
        var stream = NewStream();
        var partition = LogPartitioning.PartitionOf(stream);
        await Store.AppendAsync(stream, 0, [Evt(1)], Ct);
        var x = GlobalCheckpoint.Start;
        await Eventually.TrueAsync(async () =>
        {
            time.Advance(TimeSpan.FromSeconds(1));
            x = (await cache.ReadPartitionAsync(partition, GlobalCheckpoint.Start, 100, Ct)).Next;
            return x != GlobalCheckpoint.Start;
        }, TimeSpan.FromSeconds(20), "the first event to pass the xmin horizon");

        await Store.AppendAsync(stream, 1, [Evt(2)], Ct);
        await Store.AppendAsync(stream, 2, [Evt(3)], Ct);
        IReadOnlyList<StoredEvent> later = [];
        await Eventually.TrueAsync(async () => (later = (await Store.ReadPartitionAsync(partition, x, 100, Ct)).Events).Count >= 2,
            TimeSpan.FromSeconds(20), "both later events to pass the xmin horizon");

        // The other silo's reader is past event 2 and reads event 3 through this cache.
        time.Advance(TimeSpan.FromSeconds(1));
        var ahead = await cache.ReadPartitionAsync(partition, later[0].Checkpoint, 100, Ct);
        Assert.Equal([3L], ahead.Events.Select(e => e.Version));

        // This process's reader at event 1, at once (the cache is fresh): events 2 and 3 (both were below the horizon
        // already, and it only moves forward), never 3 without 2.
        var behind = await cache.ReadPartitionAsync(partition, x, 100, Ct);
        Assert.Equal(new long[] { 2, 3 }, behind.Events.Select(e => e.Version));
    }

    [Fact]
    public async Task ConcurrentWritersAndReadersOfSeveralPageSizes_EachSeesEveryEventExactlyOnce_InOrder()
    {
        // Real time: readers share reads within 50 ms; a small cache, so the slow reader falls off its start.
        var cache = new LogTailCache(Store, Store, new LogTailCacheOptions { MaxAge = TimeSpan.FromMilliseconds(50), MaxEventsPerPartition = 256 }, TimeProvider.System);
        const int writers = 6, batches = 30, perBatch = 5;
        var writing = Enumerable.Range(0, writers).Select(w => Task.Run(async () =>
        {
            var stream = NewStream();
            var rnd = new Random(w);
            long version = 0;
            for (var b = 0; b < batches; b++)
            {
                if (rnd.Next(3) == 0)
                {
                    // Hold a transaction open for a moment so commits interleave out of position order.
                    await using var conn = await DataSource.OpenConnectionAsync(Ct);
                    await using var tx = await conn.BeginTransactionAsync(Ct);
                    for (var i = 0; i < perBatch; i++)
                    {
                        await using var cmd = new NpgsqlCommand(
                            "INSERT INTO pf_events (stream_id, version, event_id, event_type, received_at, data) VALUES ($1, $2, gen_random_uuid(), 'status', now(), '{}')",
                            conn, tx);
                        cmd.Parameters.Add(new() { Value = stream });
                        cmd.Parameters.Add(new() { Value = ++version });
                        await cmd.ExecuteNonQueryAsync(Ct);
                    }

                    await Task.Delay(rnd.Next(1, 15), Ct);
                    await tx.CommitAsync(Ct);
                }
                else
                {
                    var r = await Store.AppendAsync(stream, version, [.. Enumerable.Range(0, perBatch).Select(_ => Evt())], Ct);
                    version = r.NextExpectedVersion;
                }
            }
        }, Ct)).ToArray();
        var allWritten = Task.WhenAll(writing);

        async Task<List<StoredEvent>> ReaderAsync(int pageSize, int pauseMs)
        {
            var seen = new List<StoredEvent>();
            var at = new GlobalCheckpoint[LogPartitioning.Count];
            var deadline = DateTime.UtcNow.AddSeconds(60);
            while (DateTime.UtcNow < deadline)
            {
                var read = 0;
                for (var p = 0; p < LogPartitioning.Count; p++)
                {
                    var page = await cache.ReadPartitionAsync(p, at[p], pageSize, Ct);
                    Assert.True(page.Events.Zip(page.Events.Skip(1)).All(x => x.First.Checkpoint.CompareTo(x.Second.Checkpoint) < 0));
                    Assert.True(page.Events.Count == 0 || page.Events[0].Checkpoint.CompareTo(at[p]) > 0);
                    seen.AddRange(page.Events);
                    at[p] = page.Next;
                    read += page.Events.Count;
                }

                if (read == 0 && allWritten.IsCompleted)
                {
                    // The horizon is cluster-wide (other tests' transactions hold it back): stop only when everything
                    // in the table has been seen (a skipped event never would be).
                    await using var count = DataSource.CreateCommand("SELECT count(*) FROM pf_events");
                    if (seen.Count >= (long)(await count.ExecuteScalarAsync(Ct))!)
                    {
                        break;
                    }
                }

                await Task.Delay(pauseMs, Ct);
            }

            return seen;
        }

        var readers = await Task.WhenAll(ReaderAsync(7, 1), ReaderAsync(17, 3), ReaderAsync(1000, 5), ReaderAsync(3, 40));
        await allWritten;
        await using var all = DataSource.CreateCommand("SELECT global_position FROM pf_events");
        var stored = new List<long>();
        await using (var r = await all.ExecuteReaderAsync(Ct))
        {
            while (await r.ReadAsync(Ct))
            {
                stored.Add(r.GetInt64(0));
            }
        }

        Assert.Equal(writers * batches * perBatch, stored.Count);
        foreach (var seen in readers)
        {
            Assert.Equal(stored.Order(), seen.Select(e => e.GlobalPosition).Order());
            foreach (var inPartition in seen.GroupBy(e => LogPartitioning.PartitionOf(e.StreamId)))
            {
                var order = inPartition.Select(e => e.Checkpoint).ToList();
                Assert.True(order.Zip(order.Skip(1)).All(x => x.First.CompareTo(x.Second) < 0), "checkpoints must strictly increase per partition");
            }
        }

        Assert.True(cache.Hits > 0, "the readers shared reads");
        Assert.True(cache.Misses > 0);
    }

    [Fact]
    public void Registration_WrapsTheStore_UnlessSwitchedOff()
    {
        ILogPartitionReader Resolve(bool enabled)
        {
            var services = new ServiceCollection();
            services.AddPumpFleetEventStore(ConnectionString);
            services.Configure<LogTailCacheOptions>(o => o.Enabled = enabled);
            return services.BuildServiceProvider().GetRequiredService<ILogPartitionReader>();
        }

        Assert.IsType<LogTailCache>(Resolve(enabled: true));
        Assert.IsType<NpgsqlEventStore>(Resolve(enabled: false));
    }

    [Theory]
    [InlineData(-1, 2048, false)]
    [InlineData(1001, 2048, false)]
    [InlineData(50, 255, false)]
    [InlineData(50, 100_001, false)]
    [InlineData(0, 256, true)]
    [InlineData(1000, 100_000, true)]
    public void Options_AreValidated(int maxAgeMs, int maxEvents, bool valid)
    {
        var result = new LogTailCacheOptionsValidator().Validate(null, new LogTailCacheOptions { MaxAge = TimeSpan.FromMilliseconds(maxAgeMs), MaxEventsPerPartition = maxEvents });
        Assert.Equal(valid, result.Succeeded);
    }

    private static (string Slow, string Fast, int Partition) TwoStreamsOfOnePartition()
    {
        var slow = NewStream();
        var partition = LogPartitioning.PartitionOf(slow);
        return (slow, NewStreamIn(partition), partition);
    }

    private static string NewStreamIn(int partition)
    {
        while (true)
        {
            var s = NewStream();
            if (LogPartitioning.PartitionOf(s) == partition)
            {
                return s;
            }
        }
    }
}
