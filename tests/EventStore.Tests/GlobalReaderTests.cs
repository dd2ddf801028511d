using Npgsql;
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
}
