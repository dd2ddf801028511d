using Microsoft.Extensions.Logging.Abstractions;
using Npgsql;
using PumpFleet.EventStore.Integrity;
using PumpFleet.EventStore.Retention;
using PumpFleet.TestSupport;

namespace PumpFleet.EventStore.Tests;

/// <summary>The event table partitioned by time (Sql/040): the conversion in place, uniqueness across partitions, partitions ahead.</summary>
public sealed class PartitioningTests(PostgresFixture pg) : EventStoreTestBase(pg)
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static DateTimeOffset MonthStart(DateTimeOffset t) => new(t.UtcDateTime.Year, t.UtcDateTime.Month, 1, 0, 0, 0, TimeSpan.Zero);

    private static readonly DateTimeOffset ThisMonth = MonthStart(DateTimeOffset.UtcNow).AddDays(2);
    private static readonly DateTimeOffset NextMonth = MonthStart(DateTimeOffset.UtcNow).AddMonths(1).AddDays(2);
    private static readonly DateTimeOffset LastMonth = MonthStart(DateTimeOffset.UtcNow).AddMonths(-1).AddDays(2);

    private static EventToAppend At(DateTimeOffset receivedAt, long? seq = null, Guid? id = null) =>
        Evt(seq, id: id) with { ReceivedAt = receivedAt };

    private static async Task<T> ScalarAsync<T>(NpgsqlDataSource ds, string sql, params object[] args)
    {
        await using var cmd = ds.CreateCommand(sql);
        foreach (var a in args)
        {
            cmd.Parameters.Add(new() { Value = a });
        }

        return (T)(await cmd.ExecuteScalarAsync(Ct))!;
    }

    private async Task<string> PartitionOfAsync(string stream, long version) => await ScalarAsync<string>(DataSource,
        "SELECT tableoid::regclass::text FROM pf_events WHERE stream_id = $1 AND version = $2", stream, version);

    [Fact]
    public async Task AStream_SpansMonthlyPartitions_AndReadsBackInOrder_WithItsChainIntact()
    {
        var s = NewStream();
        await Store.AppendAsync(s, 0, [At(LastMonth, 1), At(LastMonth, 2)], Ct);
        await Store.AppendAsync(s, 2, [At(ThisMonth, 3)], Ct);
        await Store.AppendAsync(s, 3, [At(NextMonth, 4), At(NextMonth, 5)], Ct);

        Assert.Equal("pf_events_initial", await PartitionOfAsync(s, 1));
        Assert.Equal($"pf_events_{ThisMonth:yyyy_MM}", await PartitionOfAsync(s, 3));
        Assert.Equal($"pf_events_{NextMonth:yyyy_MM}", await PartitionOfAsync(s, 5));
        Assert.Equal([1L, 2, 3, 4, 5], (await ReadAsync(s)).Select(e => e.Version));
        Assert.True((await new ChainVerifier(DataSource).VerifyAsync(s, Ct)).Intact);
        Assert.Equal(5L, await ScalarAsync<long>(DataSource, "SELECT version FROM pf_stream_heads WHERE stream_id = $1", s));
    }

    [Fact]
    public async Task AVersionAlreadyStoredInAnotherPartition_IsAConflict_AndARetryOfTheSameBatchIsAlreadyStored()
    {
        var s = NewStream();
        await Store.AppendAsync(s, 0, [At(ThisMonth, 1)], Ct);
        var first = At(ThisMonth, 2);
        await Store.AppendAsync(s, 1, [first], Ct);

        // The same version with other events, received a month later (another partition): the head says no.
        await Assert.ThrowsAsync<WrongExpectedVersionException>(() => Store.AppendAsync(s, 1, [At(NextMonth, 7)], Ct));
        // Our own batch again (same event id), landing in another partition: recognised, stored once.
        var retry = await Store.AppendAsync(s, 1, [first with { ReceivedAt = NextMonth }], Ct);
        Assert.True(retry.AlreadyStored);
        Assert.Equal([1L, 2], (await ReadAsync(s)).Select(e => e.Version));

        // A hand-written insert of an existing version into another partition is refused by the database itself.
        await using var cmd = DataSource.CreateCommand(
            "INSERT INTO pf_events (stream_id, version, event_id, event_type, received_at, data) VALUES ($1, 2, gen_random_uuid(), 'x', $2, '{}')");
        cmd.Parameters.Add(new() { Value = s });
        cmd.Parameters.Add(new() { Value = NextMonth });
        var e = await Assert.ThrowsAsync<PostgresException>(() => cmd.ExecuteNonQueryAsync(Ct));
        Assert.Equal(PostgresErrorCodes.UniqueViolation, e.SqlState);
    }

    [Fact]
    public async Task ASeqOrEventIdStoredInAnotherPartition_IsNeverStoredTwice()
    {
        var s = NewStream();
        var id = Guid.NewGuid();
        await Store.AppendAsync(s, 0, [At(LastMonth, 5, id)], Ct);

        // The same device event (serial, seq) again at the next version, a month later: refused.
        await Assert.ThrowsAsync<WrongExpectedVersionException>(() => Store.AppendAsync(s, 1, [At(ThisMonth, 5)], Ct));
        // The same event id at the next version in another partition: not stored again (the store reads it as its own
        // earlier attempt, already stored).
        Assert.True((await Store.AppendAsync(s, 1, [At(NextMonth, 6, id)], Ct)).AlreadyStored);
        Assert.Single(await ReadAsync(s));
        await Store.AppendAsync(s, 1, [At(ThisMonth, 6)], Ct);
        Assert.Equal(2, (await ReadAsync(s)).Count);
    }

    // Receive times are the servers' clocks, so a later append can carry an earlier month than a row already stored
    // (skew between silos, a commit delayed across midnight): the repeat lands in an earlier partition and must still
    // be refused, by the statement check (043 checks every month but the row's own, which its partition's index covers).
    [Fact]
    public async Task ASeqOrEventIdStoredInALaterPartition_IsNeverStoredTwice()
    {
        var s = NewStream();
        var id = Guid.NewGuid();
        await Store.AppendAsync(s, 0, [At(NextMonth, 5, id)], Ct);

        await Assert.ThrowsAsync<WrongExpectedVersionException>(() => Store.AppendAsync(s, 1, [At(ThisMonth, 5)], Ct));
        Assert.True((await Store.AppendAsync(s, 1, [At(LastMonth, 6, id)], Ct)).AlreadyStored);
        await Assert.ThrowsAsync<WrongExpectedVersionException>(() => Store.AppendAsync(s, 1, [At(NextMonth, 6), At(ThisMonth, 5)], Ct));
        Assert.Single(await ReadAsync(s));
        await Store.AppendAsync(s, 1, [At(ThisMonth, 6)], Ct);
        Assert.Equal(2, (await ReadAsync(s)).Count);
    }

    [Fact]
    public async Task ConcurrentWriters_OfOneVersion_InDifferentPartitions_ExactlyOneWins()
    {
        var s = NewStream();
        await Store.AppendAsync(s, 0, [At(ThisMonth, 1)], Ct);
        var months = new[] { LastMonth, ThisMonth, NextMonth };
        var results = await Task.WhenAll(Enumerable.Range(0, 12).Select(i => Task.Run(async () =>
        {
            try
            {
                await Store.AppendAsync(s, 1, [At(months[i % 3], 100 + i)], Ct);
                return true;
            }
            catch (WrongExpectedVersionException)
            {
                return false;
            }
        })));

        Assert.Equal(1, results.Count(ok => ok));
        Assert.Equal([1L, 2], (await ReadAsync(s)).Select(e => e.Version));
        Assert.True((await new ChainVerifier(DataSource).VerifyAsync(s, Ct)).Intact);
    }

    [Fact]
    public async Task Partitions_AreCreatedAhead_OnceEach()
    {
        var partitions = new EventPartitions(DataSource);
        var created = await partitions.EnsureAsync(6, Ct);
        var list = await partitions.ListAsync(Ct);
        var expectedEnd = MonthStart(DateTimeOffset.UtcNow).AddMonths(7);
        Assert.Equal(expectedEnd, list[^1].To);
        Assert.Equal("pf_events_initial", list[0].Name);
        Assert.Null(list[0].From);
        // Contiguous months, no holes.
        for (var i = 1; i < list.Count; i++)
        {
            Assert.Equal(list[i - 1].To, list[i].From);
        }

        Assert.Contains(created, p => p.To == expectedEnd);
        Assert.Empty(await partitions.EnsureAsync(6, Ct));
        // A row far in the future still lands (the default partition), and that month is then left alone.
        var s = NewStream();
        await Store.AppendAsync(s, 0, [At(expectedEnd.AddMonths(2).AddDays(3), 1)], Ct);
        Assert.Equal("pf_events_default", await PartitionOfAsync(s, 1));
        var more = await partitions.EnsureAsync(9, Ct);
        Assert.Equal(2, more.Count);
    }

    [Fact]
    public async Task TheWholeLogsOrderIndex_IsGone_FromEveryPartition_AndPartitionsCreatedLaterDoNotGetItBack()
    {
        // Migration 047: the partition index (log_partition, transaction_id, global_position) is the log's only index in
        // its reading order; the partition job's new months get the parent's indexes, so not the dropped one.
        Assert.NotEmpty(await new EventPartitions(DataSource).EnsureAsync(9, Ct));
        var (partitions, wholeLog, partition) = await OrderIndexesAsync(DataSource);
        Assert.True(partitions >= 11, $"{partitions} partitions");
        Assert.Equal(0L, wholeLog);
        Assert.Equal(partitions, partition);
    }

    [Fact]
    public async Task AnExistingDatabase_IsConvertedInPlace_RowsChainsAndReadersUnchanged()
    {
        var cs = await Pg.CreateEmptyDatabaseAsync("conv");
        await using var ds = NpgsqlDataSource.Create(cs);
        var migrator = new SchemaMigrator(ds, [], NullLogger<SchemaMigrator>.Instance);
        await migrator.MigrateAsync(39, Ct);
        Assert.Equal("r", (await ScalarAsync<char>(ds, "SELECT relkind FROM pg_class WHERE oid = 'pf_events'::regclass")).ToString());

        // Rows as the release before wrote them (its own append statement is gone with it; 003's trigger chains rows
        // inserted without a hash exactly as that append did).
        var store = new NpgsqlEventStore(ds);
        var streams = Enumerable.Range(0, 5).Select(_ => NewStream()).ToArray();
        foreach (var s in streams)
        {
            foreach (var (version, at) in new[] { (1L, LastMonth), (2L, LastMonth), (3L, ThisMonth) })
            {
                await using var insert = ds.CreateCommand("""
                    INSERT INTO pf_events (stream_id, version, event_id, event_type, seq, device_time, received_at, data, metadata)
                    VALUES ($1, $2, gen_random_uuid(), 'dose.delivered', $2, $3, $3, '{"volumeMl":0.0208,"kind":"basal"}', '{"hubId":"H1"}')
                    """);
                insert.Parameters.Add(new() { Value = s });
                insert.Parameters.Add(new() { Value = version });
                insert.Parameters.Add(new() { Value = at });
                await insert.ExecuteNonQueryAsync(Ct);
            }
        }

        var before = await ReadAllAsync(store);
        Assert.Equal(15, before.Count);

        await migrator.MigrateAsync(Ct);
        Assert.Equal("p", (await ScalarAsync<char>(ds, "SELECT relkind FROM pg_class WHERE oid = 'pf_events'::regclass")).ToString());
        var after = await ReadAllAsync(store);
        Assert.Equal(before, after);
        Assert.True((await new ChainVerifier(ds).VerifyAsync(ct: Ct)).Intact);
        Assert.Equal(15L, await ScalarAsync<long>(ds, "SELECT count(*) FROM pf_events_initial"));
        Assert.Equal(5L, await ScalarAsync<long>(ds, "SELECT count(*) FROM pf_stream_heads WHERE version = 3"));
        // The converted table's own copy of the whole log's order index went with the parent's (047).
        Assert.Equal(0L, (await OrderIndexesAsync(ds)).WholeLog);

        // Appends continue: positions after the old ones, the chain from the old heads, uniqueness as before.
        await store.AppendAsync(streams[0], 3, [At(NextMonth, 4)], Ct);
        await Assert.ThrowsAsync<WrongExpectedVersionException>(() => store.AppendAsync(streams[0], 2, [At(NextMonth, 9)], Ct));
        // The horizon is server-wide (another test's open transaction holds it back), so the reader is polled.
        IReadOnlyList<StoredEvent> page = [];
        await Eventually.TrueAsync(async () => (page = (await store.ReadAllAsync(after[^1].Checkpoint, 100, Ct)).Events).Count > 0,
            TimeSpan.FromSeconds(30), "the appended event below the horizon");
        var appended = Assert.Single(page);
        Assert.True(appended.GlobalPosition > after.Max(e => e.GlobalPosition));
        Assert.True((await new ChainVerifier(ds).VerifyAsync(ct: Ct)).Intact);
        // The partition reader sees the converted rows as before (and, when streams[0] shares the partition, one in 16
        // runs with random ids, the event appended above after them: compared up to the converted rows' end).
        var part = Log.LogPartitioning.PartitionOf(streams[1]);
        var partitionPage = await store.ReadPartitionAsync(part, GlobalCheckpoint.Start, 100, Ct);
        Assert.Equal(before.Where(e => Log.LogPartitioning.PartitionOf(e.StreamId) == part),
            partitionPage.Events.Where(e => e.Checkpoint.CompareTo(after[^1].Checkpoint) <= 0));
    }

    private static async Task<List<StoredEvent>> ReadAllAsync(NpgsqlEventStore store)
    {
        var all = new List<StoredEvent>();
        var at = GlobalCheckpoint.Start;
        await Eventually.TrueAsync(async () =>
        {
            var page = await store.ReadAllAsync(at, 1000, Ct);
            all.AddRange(page.Events);
            at = page.Next;
            return all.Count >= 15;
        }, TimeSpan.FromSeconds(30), "the global reader caught up");
        return all;
    }

    // The event table's leaf partitions, their indexes on (transaction_id, global_position), and on the partition's order.
    private static async Task<(long Partitions, long WholeLog, long Partition)> OrderIndexesAsync(NpgsqlDataSource ds)
    {
        await using var cmd = ds.CreateCommand("""
            SELECT count(DISTINCT t.relid),
                   count(i.indexrelid) FILTER (WHERE pg_get_indexdef(i.indexrelid) LIKE '%(transaction_id, global_position)'),
                   count(i.indexrelid) FILTER (WHERE pg_get_indexdef(i.indexrelid) LIKE '%(log_partition, transaction_id, global_position)')
            FROM pg_partition_tree('pf_events') t LEFT JOIN pg_index i ON i.indrelid = t.relid
            WHERE t.isleaf
            """);
        await using var r = await cmd.ExecuteReaderAsync(Ct);
        await r.ReadAsync(Ct);
        return (r.GetInt64(0), r.GetInt64(1), r.GetInt64(2));
    }
}
