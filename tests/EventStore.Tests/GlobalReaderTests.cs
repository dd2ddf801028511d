using Npgsql;
using PumpFleet.EventStore.Log;
using PumpFleet.TestSupport;

namespace PumpFleet.EventStore.Tests;

public sealed class GlobalReaderTests(PostgresFixture pg) : EventStoreTestBase(pg)
{
    [Fact]
    public async Task ReadAllAsync_LateCommittingTransaction_IsNotSkipped()
    {
        var ct = TestContext.Current.CancellationToken;
        await Store.AppendAsync(NewStream(), 0, [Evt(1)], ct);
        var start = GlobalCheckpoint.Start;
        await Eventually.TrueAsync(async () =>
        {
            start = (await Store.ReadAllAsync(GlobalCheckpoint.Start, 100, ct)).Next;
            return start != GlobalCheckpoint.Start;
        }, TimeSpan.FromSeconds(20), "the first event to pass the xmin horizon");

        // T1 takes a lower global position but commits after T2.
        await using var t1 = await LateCommit.BeginAsync(DataSource, "slow", ct);

        await Store.AppendAsync("fast", 0, [Evt(1)], ct);

        var whileOpen = await Store.ReadAllAsync(start, 100, ct);
        Assert.Empty(whileOpen.Events);
        Assert.Equal(start, whileOpen.Next);

        await t1.CommitAsync(ct);

        // The horizon is cluster-wide: transactions of tests running in parallel (other databases) can hold it back
        // for a moment, so poll until both committed events are below it.
        GlobalPage afterCommit = whileOpen;
        await Eventually.TrueAsync(async () =>
        {
            afterCommit = await Store.ReadAllAsync(whileOpen.Next, 100, ct);
            return afterCommit.Events.Count >= 2;
        }, TimeSpan.FromSeconds(20), "both committed events to pass the xmin horizon");

        Assert.Equal(["slow", "fast"], afterCommit.Events.Select(e => e.StreamId));
        Assert.True(afterCommit.Events[0].GlobalPosition < afterCommit.Events[1].GlobalPosition);
        Assert.Empty((await Store.ReadAllAsync(afterCommit.Next, 100, ct)).Events);
    }

    [Fact]
    public async Task ReadAllAsync_ConcurrentWritersAndReaderRestarts_SeesEveryEventExactlyOnce()
    {
        var ct = TestContext.Current.CancellationToken;
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
                    await using var conn = await DataSource.OpenConnectionAsync(ct);
                    await using var tx = await conn.BeginTransactionAsync(ct);
                    for (var i = 0; i < perBatch; i++)
                    {
                        await using var cmd = new NpgsqlCommand(
                            "INSERT INTO pf_events (stream_id, version, event_id, event_type, received_at, data) VALUES ($1, $2, gen_random_uuid(), 'status', now(), '{}')",
                            conn, tx);
                        cmd.Parameters.Add(new() { Value = stream });
                        cmd.Parameters.Add(new() { Value = ++version });
                        await cmd.ExecuteNonQueryAsync(ct);
                    }

                    await Task.Delay(rnd.Next(1, 15), ct);
                    await tx.CommitAsync(ct);
                }
                else
                {
                    var r = await Store.AppendAsync(stream, version, [.. Enumerable.Range(0, perBatch).Select(_ => Evt())], ct);
                    version = r.NextExpectedVersion;
                }
            }
        }, ct)).ToArray();

        var seen = new List<long>();
        var order = new List<GlobalCheckpoint>();
        var pages = 0;
        var allWritten = Task.WhenAll(writing);
        var deadline = DateTime.UtcNow.AddSeconds(60);
        long total = -1;
        while (DateTime.UtcNow < deadline)
        {
            // Every few pages the reader "restarts": a fresh store object resumes from the persisted checkpoint.
            var reader = pages % 4 == 0 ? new NpgsqlEventStore(DataSource) : Store;
            var checkpoint = await reader.LoadCheckpointAsync("test-reader", ct);
            var page = await reader.ReadAllAsync(checkpoint, 17, ct);
            seen.AddRange(page.Events.Select(e => e.GlobalPosition));
            order.AddRange(page.Events.Select(e => e.Checkpoint));
            await reader.SaveCheckpointAsync("test-reader", page.Next, ct);
            pages++;
            if (page.Events.Count > 0)
            {
                continue;
            }

            if (allWritten.IsCompleted)
            {
                // The horizon is cluster-wide and tests in other databases run in parallel, so an empty page does not
                // mean the end: stop only when everything in the table has been seen (a skipped event never would be).
                await using var count = DataSource.CreateCommand("SELECT count(*) FROM pf_events");
                total = (long)(await count.ExecuteScalarAsync(ct))!;
                if (seen.Count >= total)
                {
                    break;
                }
            }

            await Task.WhenAny(allWritten, Task.Delay(5, ct));
        }

        await allWritten;
        Assert.Equal(writers * batches * perBatch, seen.Count);
        Assert.Equal(seen.Count, seen.Distinct().Count());
        Assert.Equal(total, seen.Count);
        Assert.True(order.Zip(order.Skip(1)).All(p => p.First.CompareTo(p.Second) < 0), "checkpoints must strictly increase in read order");
    }

    [Fact]
    public async Task ReadAllAsync_OverEveryLogPartitionAndMonth_ReadsTheLogsOrder_AndStopsBelowAnOpenTransaction()
    {
        // The global reader merges the sixteen log partitions' ranges of the partition index (migration 047 dropped the
        // whole log's index): its pages must still be exactly the log's (transaction_id, global_position) order, across
        // partitions and month partitions, and stop below the oldest open transaction.
        var ct = TestContext.Current.CancellationToken;
        var streams = new List<string>();
        while (Enumerable.Range(0, LogPartitioning.Count).Any(p => streams.Count(s => LogPartitioning.PartitionOf(s) == p) < 2))
        {
            var s = NewStream();
            if (streams.Count(x => LogPartitioning.PartitionOf(x) == LogPartitioning.PartitionOf(s)) < 2)
            {
                streams.Add(s);
            }
        }

        // One transaction per round, every stream one event in it, the month moving back and forth between rounds, so the
        // log's order runs through every partition and month partition and back.
        var now = DateTimeOffset.UtcNow;
        var thisMonth = new DateTimeOffset(now.Year, now.Month, 1, 0, 0, 0, TimeSpan.Zero).AddDays(2);
        DateTimeOffset[] months = [thisMonth.AddMonths(-1), thisMonth.AddMonths(1), thisMonth];
        for (var round = 0; round < 6; round++)
        {
            await InsertRoundAsync(streams, round + 1, months[round % 3], ct);
        }

        await using var late = await LateCommit.BeginAsync(DataSource, "late" + NewStream(), ct);
        for (var round = 6; round < 9; round++)
        {
            await InsertRoundAsync(streams, round + 1, months[round % 3], ct);
        }

        Assert.Equal((3L, (long)LogPartitioning.Count), await ScalarsAsync<long, long>("SELECT count(DISTINCT tableoid), count(DISTINCT log_partition) FROM pf_events", ct));
        // The head is the newest committed event in the log's order, whatever partition holds it.
        var head = await Store.ReadHeadAsync(ct);
        Assert.Equal((await LogOrderAsync(ct))[^1], head!.Checkpoint);

        // Pages of 7 (rounds are 32 events): every event of the six rounds below the open transaction, in order, then nothing.
        var read = new List<GlobalCheckpoint>();
        var at = GlobalCheckpoint.Start;
        await Eventually.TrueAsync(async () =>
        {
            var page = await Store.ReadAllAsync(at, 7, ct);
            Assert.True(page.Events.Count <= 7);
            read.AddRange(page.Events.Select(e => e.Checkpoint));
            at = page.Next;
            return read.Count >= 6 * streams.Count;
        }, TimeSpan.FromSeconds(30), "the six rounds below the open transaction to be read");
        Assert.Empty((await Store.ReadAllAsync(at, 7, ct)).Events);
        Assert.Equal(6 * streams.Count, read.Count);
        // The count has no horizon: every committed event, the three rounds above the open transaction too.
        Assert.Equal(9L * streams.Count, await Store.CountAfterAsync(GlobalCheckpoint.Start, 1_000, ct));
        Assert.Equal(10L, await Store.CountAfterAsync(GlobalCheckpoint.Start, 10, ct));

        // Once it commits: the late event, then the three rounds after it.
        await late.CommitAsync(ct);
        await Eventually.TrueAsync(async () =>
        {
            var page = await Store.ReadAllAsync(at, 7, ct);
            read.AddRange(page.Events.Select(e => e.Checkpoint));
            at = page.Next;
            return read.Count >= (9 * streams.Count) + 1;
        }, TimeSpan.FromSeconds(30), "the rest of the log to be read");
        Assert.Equal(await LogOrderAsync(ct), read);
        Assert.Equal(3L * streams.Count, await Store.CountAfterAsync(read[6 * streams.Count], 1_000, ct));
        Assert.Equal(head.Checkpoint, (await Store.ReadHeadAsync(ct))!.Checkpoint);
    }

    private async Task InsertRoundAsync(IReadOnlyList<string> streams, long version, DateTimeOffset receivedAt, CancellationToken ct)
    {
        await using var cmd = DataSource.CreateCommand("""
            INSERT INTO pf_events (stream_id, version, event_id, event_type, received_at, data)
            SELECT s, $2, gen_random_uuid(), 'status', $3, '{}' FROM unnest($1::text[]) WITH ORDINALITY AS u(s, i) ORDER BY i
            """);
        cmd.Parameters.Add(new() { Value = streams.ToArray() });
        cmd.Parameters.Add(new() { Value = version });
        cmd.Parameters.Add(new() { Value = receivedAt });
        await cmd.ExecuteNonQueryAsync(ct);
    }

    // The log's order as PostgreSQL sorts the whole table (no index involved).
    private async Task<List<GlobalCheckpoint>> LogOrderAsync(CancellationToken ct)
    {
        await using var cmd = DataSource.CreateCommand("SELECT transaction_id::text AS tx, global_position FROM pf_events ORDER BY transaction_id, global_position");
        await using var r = await cmd.ExecuteReaderAsync(ct);
        var list = new List<GlobalCheckpoint>();
        while (await r.ReadAsync(ct))
        {
            list.Add(new GlobalCheckpoint(ulong.Parse(r.GetString(0), System.Globalization.CultureInfo.InvariantCulture), r.GetInt64(1)));
        }

        return list;
    }

    private async Task<(T1, T2)> ScalarsAsync<T1, T2>(string sql, CancellationToken ct)
    {
        await using var cmd = DataSource.CreateCommand(sql);
        await using var r = await cmd.ExecuteReaderAsync(ct);
        await r.ReadAsync(ct);
        return (await r.GetFieldValueAsync<T1>(0, ct), await r.GetFieldValueAsync<T2>(1, ct));
    }
}
