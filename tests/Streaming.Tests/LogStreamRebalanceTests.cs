using Npgsql;
using PumpFleet.EventStore;
using PumpFleet.EventStore.Log;
using PumpFleet.TestSupport;

namespace PumpFleet.Streaming.Tests;

/// <summary>Queues move to the surviving silo when one stops; nothing is skipped.</summary>
public sealed class LogStreamRebalanceTests(PostgresFixture pg)
{
    [Fact]
    public async Task WhenASiloStops_ItsQueuesMove_AndEveryEventIsStillDelivered_InOrder()
    {
        var ct = TestContext.Current.CancellationToken;
        var cs = await StreamCluster.CreateDatabaseAsync(pg, "lr");
        await using var ds = NpgsqlDataSource.Create(cs);
        var store = new NpgsqlEventStore(ds);
        await using var cluster = await StreamCluster.StartAsync(cs, silos: 2);

        // Two streams in every partition, so every queue (on either silo) has work before and after.
        var streams = Enumerable.Range(0, LogPartitioning.Count)
            .SelectMany(p => new[] { StreamCluster.NewStreamIdIn($"RB{p}A", p), StreamCluster.NewStreamIdIn($"RB{p}B", p) }).ToList();
        foreach (var s in streams)
        {
            await StreamCluster.AppendAsync(store, s, 0, 5);
        }

        await Eventually.TrueAsync(() => Task.FromResult(streams.All(s => Recorder.DistinctVersions(s).Length == 5)), TimeSpan.FromSeconds(120),
            "the first 5 events of every stream delivered with two silos");

        await cluster.StopSiloAsync(cluster.Silos[1], ct);
        foreach (var s in streams)
        {
            await StreamCluster.AppendAsync(store, s, 5, 5);
        }

        await Eventually.TrueAsync(() => Task.FromResult(streams.All(s => Recorder.DistinctVersions(s).Length == 10)), TimeSpan.FromSeconds(120),
            "the next 5 events of every stream delivered by the surviving silo");
        foreach (var s in streams)
        {
            LogStreamClusterTests.AssertInOrderWithoutGaps(Recorder.Versions(s), 10);
        }

        // Every queue's checkpoint reaches the end of its partition (the survivor saves what it delivered).
        await Eventually.TrueAsync(async () =>
        {
            await using var cmd = ds.CreateCommand("""
                SELECT count(*) FROM pf_checkpoints c
                WHERE c.name LIKE 'stream:pumpfleet-log:%of16'
                  AND (c.transaction_id, c.global_position) >= (SELECT transaction_id, global_position FROM pf_events e
                       WHERE e.log_partition = split_part(split_part(c.name, ':', 3), 'of', 1)::smallint
                       ORDER BY transaction_id DESC, global_position DESC LIMIT 1)
                """);
            return (long)(await cmd.ExecuteScalarAsync(ct))! == LogPartitioning.Count;
        }, TimeSpan.FromSeconds(60), "all 16 checkpoints at the end of their partitions");
    }
}
