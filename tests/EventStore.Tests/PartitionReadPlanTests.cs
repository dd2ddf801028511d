using Npgsql;
using PumpFleet.EventStore.Log;
using PumpFleet.TestSupport;

namespace PumpFleet.EventStore.Tests;

/// <summary>
/// The log partition reads (the receivers' and projections' pages, the lag gauge's count) must stay on the partition's
/// own index range whatever the planner's statistics say. A month partition that has grown since it was last analysed
/// (every benchmark run, the first days of each month) made the planner take the whole log's
/// <c>(transaction_id, global_position)</c> index and drop the other fifteen partitions' rows one heap fetch at a time:
/// 16x the rows read per page (issue 15). This builds exactly that state and counts which index the reads used.
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

        // A checkpoint near the end of partition 3: what a live reader holds.
        var (tx, position) = await NearTheEndAsync(3, 400);
        var after = new GlobalCheckpoint(ulong.Parse(tx, System.Globalization.CultureInfo.InvariantCulture), position);
        var globalIndex = await IndexOfAsync(month, "transaction_id, global_position");
        var partitionIndex = await IndexOfAsync(month, "log_partition, transaction_id, global_position");
        await ExecAsync("SELECT pg_stat_force_next_flush()");
        await ExecAsync("SELECT 1");
        var before = await ScansAsync(globalIndex, partitionIndex);

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
        await Eventually.TrueAsync(async () =>
        {
            var now = await ScansAsync(globalIndex, partitionIndex);
            return now.Global - before.Global + now.Partition - before.Partition >= 24;
        }, TimeSpan.FromSeconds(30), "the reads' index scans to be reported", TimeSpan.FromMilliseconds(200));
        var scans = await ScansAsync(globalIndex, partitionIndex);
        Assert.True(scans.Global == before.Global,
            $"{scans.Global - before.Global} scans of the whole log's index, {scans.Partition - before.Partition} of the partition index");
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

    // The checkpoint `count` events before the end of a partition.
    private async Task<(string Tx, long Position)> NearTheEndAsync(int partition, int count)
    {
        await using var cmd = new NpgsqlCommand($"""
            SELECT transaction_id::text, global_position FROM pf_events WHERE log_partition = {partition}
             ORDER BY transaction_id DESC, global_position DESC OFFSET {count} LIMIT 1
            """, _conn);
        await using var r = await cmd.ExecuteReaderAsync(Ct);
        Assert.True(await r.ReadAsync(Ct));
        return (r.GetString(0), r.GetInt64(1));
    }

    // The month partition's index on exactly these columns.
    private Task<string> IndexOfAsync(string table, string columns) => ScalarAsync<string>($"""
        SELECT i.indexrelid::regclass::text FROM pg_index i
         WHERE i.indrelid = '{table}'::regclass
           AND pg_get_indexdef(i.indexrelid) LIKE '%({columns})'
        """);

    private async Task<(long Global, long Partition)> ScansAsync(string globalIndex, string partitionIndex)
    {
        await using var cmd = DataSource.CreateCommand($"""
            SELECT (SELECT idx_scan FROM pg_stat_user_indexes WHERE indexrelid = '{globalIndex}'::regclass),
                   (SELECT idx_scan FROM pg_stat_user_indexes WHERE indexrelid = '{partitionIndex}'::regclass)
            """);
        await using var r = await cmd.ExecuteReaderAsync(Ct);
        await r.ReadAsync(Ct);
        return (r.GetInt64(0), r.GetInt64(1));
    }

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
