using Npgsql;
using PumpFleet.EventStore.Log;
using PumpFleet.TestSupport;

namespace PumpFleet.EventStore.Tests;

/// <summary>
/// The log partition reads (the receivers' and projections' pages, the lag gauge's count) must stay on the partition's
/// own index range whatever the planner's statistics say. A month partition that has grown since it was last analysed
/// (every benchmark run, the first days of each month) made the planner take the whole log's
/// <c>(transaction_id, global_position)</c> index and drop the other fifteen partitions' rows one heap fetch at a time:
/// 16x the rows read per page (issue 15). Migration 047 dropped that index; this builds exactly that state and counts
/// which index (or sequential scan) served the reads, and that the readers of the whole log's order (global page, head,
/// count), now a merge of the sixteen partitions' ranges, never scan the month partition sequentially either.
/// </summary>
public sealed class PartitionReadPlanTests(PostgresFixture pg) : EventStoreTestBase(pg)
{
    private NpgsqlConnection? _conn;

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task PartitionReads_UseThePartitionIndex_WhenTheStatisticsAreStale()
    {
        // 20,000 events analysed, then 200,000 more the statistics do not know of (autovacuum off for the table, so
        // nothing analyses it behind the test's back). Rows inserted directly: the append path is not what is tested.
        // The test's own statements run on one connection of their own, whose index scans are flushed to the statistics
        // before the count starts (a backend reports them when it goes idle, up to ten seconds later otherwise).
        await using var conn = await DataSource.OpenConnectionAsync(Ct);
        _conn = conn;
        await InsertAsync(0, 20_000);
        var month = await ScalarAsync<string>("SELECT tableoid::regclass::text FROM pf_events LIMIT 1");
        await ExecAsync($"ALTER TABLE {month} SET (autovacuum_enabled = false); ANALYZE {month}");
        await InsertAsync(20_000, 220_000);
        await ExecAsync($"VACUUM {month}");

        // A checkpoint near the end of partition 3: what a live reader holds; and one near the end of the whole log.
        var after = await NearTheEndAsync(3, 400);
        var globalAfter = await NearTheEndAsync(null, 400);
        // The whole log's order index is gone from the month partition (migration 047): only the partition index is left
        // in the log's order, so any scan of another index or of the table itself is a read off the partition index.
        Assert.Equal(0L, await ScalarAsync<long>($"""
            SELECT count(*) FROM pg_index i
             WHERE i.indrelid = '{month}'::regclass AND pg_get_indexdef(i.indexrelid) LIKE '%(transaction_id, global_position%'
            """));
        var partitionIndex = await ScalarAsync<string>($"""
            SELECT i.indexrelid::regclass::text FROM pg_index i
             WHERE i.indrelid = '{month}'::regclass AND pg_get_indexdef(i.indexrelid) LIKE '%(log_partition, transaction_id, global_position)'
            """);
        await ExecAsync("SELECT pg_stat_force_next_flush()");
        await ExecAsync("SELECT 1");
        var before = await ScansAsync(month, partitionIndex);

        // More than five reads, so Npgsql prepares the statements and PostgreSQL may move to a generic plan.
        for (var i = 0; i < 8; i++)
        {
            var page = await Store.ReadPartitionAsync(3, after, 500, Ct);
            Assert.Equal(400, page.Events.Count);
            Assert.All(page.Events, e => Assert.Equal(3, LogPartitioning.PartitionOf(e.StreamId)));
            var (pageWithHorizon, _) = await Store.ReadPartitionWithHorizonAsync(3, after, 500, Ct);
            Assert.Equal(page.Events.Select(e => e.GlobalPosition), pageWithHorizon.Events.Select(e => e.GlobalPosition));
            Assert.Equal(400L, await Store.CountPartitionAfterAsync(3, after, 10_000_000, Ct));
        }

        // The backends report their index scans when they go idle (within about ten seconds, PostgreSQL 15).
        var reads = await ReportedAsync(month, partitionIndex, before, 24);
        Assert.True(reads.Other == before.Other && reads.Sequential == before.Sequential,
            $"{reads.Other - before.Other} scans of other indexes and {reads.Sequential - before.Sequential} sequential scans of {month}, " +
            $"{reads.Partition - before.Partition} of the partition index");

        // The whole log's order from near its end: each partition's range of the partition index, merged.
        for (var i = 0; i < 8; i++)
        {
            var page = await Store.ReadAllAsync(globalAfter, 500, Ct);
            Assert.Equal(400, page.Events.Count);
            Assert.Equal(400L, await Store.CountAfterAsync(globalAfter, 10_000_000, Ct));
            Assert.NotNull(await Store.ReadHeadAsync(Ct));
        }

        // The page and the head read: eight times sixteen log partitions' range scans of the month's partition index each (the
        // count's sixteen ranges may be one scan).
        var global = await ReportedAsync(month, partitionIndex, reads, 2 * 8 * LogPartitioning.Count);
        Assert.True(global.Other == reads.Other && global.Sequential == reads.Sequential,
            $"{global.Other - reads.Other} scans of other indexes and {global.Sequential - reads.Sequential} sequential scans of {month}, " +
            $"{global.Partition - reads.Partition} of the partition index");
    }

    private async Task<Scans> ReportedAsync(string month, string partitionIndex, Scans since, int partitionScans)
    {
        // Scans of any kind count towards the wait, so that reads off the partition index fail the assertions after it
        // (with their figures) rather than the wait.
        await Eventually.TrueAsync(async () => await ScansAsync(month, partitionIndex) is var now
                && now.Partition + now.Other + now.Sequential - since.Partition - since.Other - since.Sequential >= partitionScans,
            TimeSpan.FromSeconds(30), "the reads' scans to be reported", TimeSpan.FromMilliseconds(200));
        var scans = await ScansAsync(month, partitionIndex);
        Assert.True(scans.Partition - since.Partition >= partitionScans,
            $"{scans.Partition - since.Partition} scans of the partition index, {partitionScans} expected");
        return scans;
    }

    private async Task InsertAsync(int from, int to)
    {
        // Streams spread over every log partition, 4 events each; a fixed hash skips the chain trigger.
        var prefix = Guid.NewGuid().ToString("N")[..8];
        await ExecAsync($$"""
            INSERT INTO pf_events (stream_id, version, event_id, event_type, received_at, data, hash)
            SELECT '{{prefix}}-' || (g / 4), g % 4 + 1, gen_random_uuid(), 'status', now(), '{}', '\x00'::bytea
              FROM generate_series({{from}}, {{to - 1}}) g
            """);
    }

    // The checkpoint `count` events before the end of a log partition, or of the whole log.
    private async Task<GlobalCheckpoint> NearTheEndAsync(int? partition, int count)
    {
        await using var cmd = new NpgsqlCommand($"""
            SELECT transaction_id::text AS tx, global_position FROM pf_events {(partition is { } p ? $"WHERE log_partition = {p}" : "")}
             ORDER BY transaction_id DESC, global_position DESC OFFSET {count} LIMIT 1
            """, _conn);
        await using var r = await cmd.ExecuteReaderAsync(Ct);
        Assert.True(await r.ReadAsync(Ct));
        return new GlobalCheckpoint(ulong.Parse(r.GetString(0), System.Globalization.CultureInfo.InvariantCulture), r.GetInt64(1));
    }

    // Scans of the month partition so far: of the partition index, of its other indexes, and sequential.
    private async Task<Scans> ScansAsync(string month, string partitionIndex)
    {
        await using var cmd = DataSource.CreateCommand($"""
            SELECT (SELECT idx_scan FROM pg_stat_user_indexes WHERE indexrelid = '{partitionIndex}'::regclass),
                   (SELECT coalesce(sum(idx_scan), 0)::bigint FROM pg_stat_user_indexes
                     WHERE relid = '{month}'::regclass AND indexrelid <> '{partitionIndex}'::regclass),
                   (SELECT seq_scan FROM pg_stat_user_tables WHERE relid = '{month}'::regclass)
            """);
        await using var r = await cmd.ExecuteReaderAsync(Ct);
        await r.ReadAsync(Ct);
        return new Scans(r.GetInt64(0), r.GetInt64(1), r.GetInt64(2));
    }

    private sealed record Scans(long Partition, long Other, long Sequential);

    private async Task ExecAsync(string sql)
    {
        await using var cmd = new NpgsqlCommand(sql, _conn);
        await cmd.ExecuteNonQueryAsync(Ct);
    }

    private async Task<T> ScalarAsync<T>(string sql)
    {
        await using var cmd = new NpgsqlCommand(sql, _conn);
        return (T)(await cmd.ExecuteScalarAsync(Ct))!;
    }
}
