using Microsoft.Extensions.DependencyInjection;
using Npgsql;
using PumpFleet.EventStore;
using PumpFleet.EventStore.Log;
using PumpFleet.TestSupport;

namespace PumpFleet.Streaming.Tests;

/// <summary>The event store's side of the provider: the stored partition, the partition reader, the notifications.</summary>
public sealed class LogPartitionReaderTests(PostgresFixture pg)
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task StoredPartition_IsTheOneTheQueueMapperComputes()
    {
        var cs = await pg.CreateDatabaseAsync("lp");
        await using var ds = NpgsqlDataSource.Create(cs);
        var store = new NpgsqlEventStore(ds);
        // ASCII serials, cohort stream ids and non-ASCII text (multi-byte UTF-8) alike.
        var ids = Enumerable.Range(0, 150).Select(i => StreamCluster.NewStreamId("P" + i))
            .Concat(["cohort:SynchroMed II:4.2:L-77", "Grüße-Ω-泵-1", "a", "ß"]).ToList();
        foreach (var id in ids)
        {
            await StreamCluster.AppendAsync(store, id, 0, 1);
        }

        await using var cmd = ds.CreateCommand("SELECT stream_id, log_partition, pf_log_partition(stream_id) FROM pf_events");
        await using var r = await cmd.ExecuteReaderAsync(Ct);
        var seen = 0;
        while (await r.ReadAsync(Ct))
        {
            var expected = LogPartitioning.PartitionOf(r.GetString(0));
            Assert.Equal(expected, r.GetInt16(1));
            Assert.Equal(expected, r.GetInt16(2));
            seen++;
        }

        Assert.Equal(ids.Count, seen);
        // 154 ids over 16 partitions: a hash that put them all in a few partitions would defeat the point.
        Assert.True(ids.Select(LogPartitioning.PartitionOf).Distinct().Count() >= 12);
    }

    [Fact]
    public async Task ReadPartition_ReturnsOnlyItsPartition_InCommitSafeOrder_Paged()
    {
        var cs = await pg.CreateDatabaseAsync("lp");
        await using var ds = NpgsqlDataSource.Create(cs);
        var store = new NpgsqlEventStore(ds);
        var a = StreamCluster.NewStreamIdIn("A", 3);
        var b = StreamCluster.NewStreamIdIn("B", 3);
        var other = StreamCluster.NewStreamIdIn("C", 4);
        await StreamCluster.AppendAsync(store, a, 0, 3);
        await StreamCluster.AppendAsync(store, other, 0, 5);
        await StreamCluster.AppendAsync(store, b, 0, 2);
        await StreamCluster.AppendAsync(store, a, 3, 2);

        var read = new List<StoredEvent>();
        var position = GlobalCheckpoint.Start;
        await Eventually.TrueAsync(async () =>
        {
            var page = await store.ReadPartitionAsync(3, position, 2, Ct);
            read.AddRange(page.Events);
            position = page.Next;
            return read.Count >= 7;
        }, TimeSpan.FromSeconds(30), "partition 3 read to its end in pages of 2");

        Assert.Equal(7, read.Count);
        Assert.All(read, e => Assert.NotEqual(other, e.StreamId));
        Assert.Equal([1, 2, 3, 4, 5], read.Where(e => e.StreamId == a).Select(e => e.Version));
        Assert.Equal(read.OrderBy(e => e.Checkpoint).Select(e => e.EventId), read.Select(e => e.EventId));
        Assert.Empty((await store.ReadPartitionAsync(3, position, 10, Ct)).Events);
    }

    [Fact]
    public async Task ReadPartition_NeverSkipsALateCommit()
    {
        var cs = await pg.CreateDatabaseAsync("lp");
        await using var ds = NpgsqlDataSource.Create(cs);
        var store = new NpgsqlEventStore(ds);
        var late = StreamCluster.NewStreamIdIn("LATE", 7);
        var early = StreamCluster.NewStreamIdIn("EARLY", 7);

        // T1 takes the lower global position and stays open while a later append commits.
        await using var slow = await ds.OpenConnectionAsync(Ct);
        await using var tx = await slow.BeginTransactionAsync(Ct);
        await using (var insert = new NpgsqlCommand(
            "INSERT INTO pf_events (stream_id, version, event_id, event_type, received_at, data) VALUES ($1, 1, gen_random_uuid(), 'test.late', now(), '{}')", slow, tx))
        {
            insert.Parameters.Add(new() { Value = late });
            await insert.ExecuteNonQueryAsync(Ct);
        }

        await StreamCluster.AppendAsync(store, early, 0, 2);
        // The committed append is above the open transaction's horizon: the reader must not hand it out yet, or its
        // checkpoint would pass the open transaction's lower position.
        var whileOpen = await store.ReadPartitionAsync(7, GlobalCheckpoint.Start, 100, Ct);
        Assert.Empty(whileOpen.Events);
        Assert.Equal(GlobalCheckpoint.Start, whileOpen.Next);

        await tx.CommitAsync(Ct);
        var read = new List<StoredEvent>();
        var position = GlobalCheckpoint.Start;
        await Eventually.TrueAsync(async () =>
        {
            var page = await store.ReadPartitionAsync(7, position, 100, Ct);
            read.AddRange(page.Events);
            position = page.Next;
            return read.Count >= 3;
        }, TimeSpan.FromSeconds(30), "both transactions read after the late commit");

        Assert.Equal([late, early, early], read.Select(e => e.StreamId));
        Assert.True(read[0].GlobalPosition < read[1].GlobalPosition, "the late transaction holds the lower position");
    }

    [Fact]
    public async Task AdvanceCheckpoint_NeverMovesBack()
    {
        var cs = await pg.CreateDatabaseAsync("lp");
        await using var ds = NpgsqlDataSource.Create(cs);
        var store = new NpgsqlEventStore(ds);
        Assert.Equal(new GlobalCheckpoint(10, 5), await store.AdvanceCheckpointAsync("stream:x:0of16", new(10, 5), Ct));
        Assert.Equal(new GlobalCheckpoint(10, 5), await store.AdvanceCheckpointAsync("stream:x:0of16", new(9, 99), Ct));
        Assert.Equal(new GlobalCheckpoint(10, 5), await store.AdvanceCheckpointAsync("stream:x:0of16", new(10, 4), Ct));
        Assert.Equal(new GlobalCheckpoint(11, 1), await store.AdvanceCheckpointAsync("stream:x:0of16", new(11, 1), Ct));
    }

    [Fact]
    public async Task Listener_CountsOneNotificationPerCommittedAppend_OnlyForItsPartition()
    {
        var cs = await pg.CreateDatabaseAsync("lp");
        var services = new ServiceCollection().AddLogging().AddPumpFleetEventStore(cs).BuildServiceProvider();
        await using var _ = services;
        var store = services.GetRequiredService<IEventStore>();
        var listener = services.GetRequiredService<LogNotificationListener>();
        listener.EnsureStarted();
        await Eventually.TrueAsync(() => Task.FromResult(listener.IsListening), TimeSpan.FromSeconds(30), "LISTEN is up");
        var before = Enumerable.Range(0, LogPartitioning.Count).Select(listener.CountOf).ToArray();

        var id = StreamCluster.NewStreamIdIn("N", 5);
        await StreamCluster.AppendAsync(store, id, 0, 10);
        await Eventually.TrueAsync(() => Task.FromResult(listener.CountOf(5) == before[5] + 1), TimeSpan.FromSeconds(30), "one notification for partition 5");

        // A rolled-back append notifies nobody.
        await using (var conn = await services.GetRequiredService<NpgsqlDataSource>().OpenConnectionAsync(Ct))
        await using (var tx = await conn.BeginTransactionAsync(Ct))
        {
            await using var insert = new NpgsqlCommand(
                "INSERT INTO pf_events (stream_id, version, event_id, event_type, received_at, data) VALUES ($1, 11, gen_random_uuid(), 'test.x', now(), '{}')", conn, tx);
            insert.Parameters.Add(new() { Value = id });
            await insert.ExecuteNonQueryAsync(Ct);
            await tx.RollbackAsync(Ct);
        }

        // A second append is the marker: once it is heard, the rollback would have been heard before it.
        await StreamCluster.AppendAsync(store, id, 10, 1);
        await Eventually.TrueAsync(() => Task.FromResult(listener.CountOf(5) >= before[5] + 2), TimeSpan.FromSeconds(30), "the marker append heard");
        Assert.Equal(before[5] + 2, listener.CountOf(5));
        for (var p = 0; p < LogPartitioning.Count; p++)
        {
            if (p != 5)
            {
                Assert.Equal(before[p], listener.CountOf(p));
            }
        }
    }
}
