using System.Collections.Concurrent;
using Npgsql;
using PumpFleet.EventStore.Log;
using PumpFleet.TestSupport;

namespace PumpFleet.EventStore.Tests;

/// <summary>
/// The log readers' NOTIFY after the group's commit (migration 044, <see cref="GroupCommitOptions.NotifyAfterCommit"/>):
/// each partition that got rows is notified exactly once per group, either way; switched on, the append's own
/// transaction stays silent (else each partition would be notified twice: the trigger's and the committer's come from
/// two transactions, which PostgreSQL does not fold), and the silence does not outlive that transaction.
/// </summary>
public sealed class NotifyAfterCommitTests(PostgresFixture pg) : EventStoreTestBase(pg)
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task EachPartitionWithRows_IsNotifiedOncePerGroup_AndOtherAppendsStillNotify(bool notifyAfterCommit)
    {
        // Each test has a database of its own, and notifications are per database: only this test's arrive.
        await using var listener = await ListenAsync();
        // One pooled connection, so the append after the group runs on the connection the group used.
        await using var single = NpgsqlDataSource.Create(new NpgsqlConnectionStringBuilder(ConnectionString) { MaxPoolSize = 1 }.ConnectionString);
        // Streams of six different partitions, so that however the committer splits them into groups each partition
        // is notified once.
        var streams = Enumerable.Range(0, 1000).Select(_ => NewStream()).DistinctBy(LogPartitioning.PartitionOf).Take(6).ToArray();
        await using (var committer = new GroupCommitter(single, new GroupCommitOptions
                     {
                         Writers = 1, MaxStreams = 60, Linger = TimeSpan.FromMilliseconds(50), NotifyAfterCommit = notifyAfterCommit,
                     }))
        {
            await Task.WhenAll(streams.Select(s => committer.AppendAsync(new StreamAppend(s, 0, [Evt(1), Evt(2)]), Ct)));
        }

        var expected = streams.Select(s => LogPartitioning.PartitionOf(s).ToString(System.Globalization.CultureInfo.InvariantCulture)).Order(StringComparer.Ordinal).ToList();
        Assert.Equal(expected, (await listener.UntilSentinelAsync(DataSource)).Order(StringComparer.Ordinal));

        // An append outside the committer (its own transaction, the trigger's NOTIFY) on the same connection: notified.
        var other = NewStream();
        await new NpgsqlEventStore(single).AppendAsync(other, 0, [Evt(1)], Ct);
        Assert.Equal([LogPartitioning.PartitionOf(other).ToString(System.Globalization.CultureInfo.InvariantCulture)], await listener.UntilSentinelAsync(DataSource));
    }

    [Fact]
    public async Task AGroupWhoseStreamsAllConflict_NotifiesNothing()
    {
        await using var listener = await ListenAsync();
        var s = NewStream();
        await Store.AppendAsync(s, 0, [Evt(1)], Ct);
        Assert.Single(await listener.UntilSentinelAsync(DataSource));

        await using (var committer = new GroupCommitter(DataSource, new GroupCommitOptions { Writers = 1, NotifyAfterCommit = true }))
        {
            await Assert.ThrowsAsync<WrongExpectedVersionException>(() => committer.AppendAsync(new StreamAppend(s, 0, [Evt(2)]), Ct));
        }

        Assert.Empty(await listener.UntilSentinelAsync(DataSource));
    }

    private async Task<Listener> ListenAsync()
    {
        var conn = new NpgsqlConnection(ConnectionString);
        await conn.OpenAsync(Ct);
        var received = new ConcurrentQueue<string>();
        conn.Notification += (_, e) => received.Enqueue(e.Payload);
        await using (var cmd = new NpgsqlCommand($"LISTEN {LogNotificationListener.Channel}", conn))
        {
            await cmd.ExecuteNonQueryAsync(Ct);
        }

        return new Listener(conn, received);
    }

    private sealed class Listener(NpgsqlConnection conn, ConcurrentQueue<string> received) : IAsyncDisposable
    {
        /// <summary>
        /// Sends a sentinel notification after everything before it has committed, waits for it (notifications arrive in
        /// commit order) and returns what arrived before it since the last call: absence is proven without a sleep.
        /// </summary>
        public async Task<List<string>> UntilSentinelAsync(NpgsqlDataSource ds)
        {
            var sentinel = "sentinel-" + Guid.NewGuid().ToString("N");
            await using (var cmd = ds.CreateCommand($"SELECT pg_notify('{LogNotificationListener.Channel}', $1)"))
            {
                cmd.Parameters.Add(new() { Value = sentinel });
                await cmd.ExecuteNonQueryAsync(Ct);
            }

            var before = new List<string>();
            var deadline = DateTime.UtcNow.AddSeconds(30);
            while (DateTime.UtcNow < deadline)
            {
                while (received.TryDequeue(out var payload))
                {
                    if (payload == sentinel)
                    {
                        return before;
                    }

                    before.Add(payload);
                }

                await conn.WaitAsync(TimeSpan.FromMilliseconds(200), Ct);
            }

            throw new TimeoutException("The sentinel notification did not arrive within 30 s.");
        }

        public ValueTask DisposeAsync() => conn.DisposeAsync();
    }
}
