using Microsoft.Extensions.DependencyInjection;
using PumpFleet.EventStore;
using PumpFleet.ReadModels;
using PumpFleet.TestSupport;

namespace PumpFleet.Projections.Tests;

/// <summary>
/// The engine's page with fewer round trips (issue 14, h14r): every page's first and short pages read ahead
/// (<see cref="ProjectionOptions.ReadAheadEveryPage"/>) and the checkpoint, the progress row and the COMMIT sent with
/// the writes (<see cref="ProjectionOptions.CommitWithWrites"/>, the pumps model in its own batch of writes). The
/// guarantees stay those of the page with its own round trips: the same rows and progress, nothing written under a lost
/// checkpoint lock, nothing kept of a page whose write fails.
/// </summary>
public sealed class PageRoundTripTests(PostgresFixture pg) : ProjectionTestBase(pg)
{
    // readAheadOnlyWhenFull false: every page is read ahead, short ones too; each catch-up must still end at the end of
    // the log (a short read-ahead page keeps its partition in the round once, not until the budget runs out).
    [Theory]
    [InlineData(1, true)]
    [InlineData(2, true)]
    [InlineData(1, false)]
    public async Task BatchedPages_LeaveTheSameRowsAndProgress_AsPagesWithTheirOwnRoundTrips(int workers, bool readAheadOnlyWhenFull)
    {
        var seed = Seed();
        var now = Build(ConnectionString, pageSize: 45, partitions: workers,
            configure: s => s.Configure<ProjectionOptions>(o => o.ReadAheadOnlyWhenFull = readAheadOnlyWhenFull));
        var runner = now.GetRequiredService<ProjectionRunner>();
        var stagesBefore = runner.Stages.Snapshot();
        // Caught up after each wave of the log: later pages update rows the earlier ones wrote, as in a running platform.
        await seed.AppendInWavesAsync(Store, 24, () => CatchUpAllAsync(runner, workers), Ct);
        await CatchUpAllAsync(runner, workers);

        var other = await Pg.CreateDatabaseAsync("roundtrips", typeof(PumpProjection).Assembly);
        var before = Build(other, pageSize: 45, partitions: workers, configure: s => s.Configure<ProjectionOptions>(o =>
        {
            o.ReadAheadEveryPage = false;
            o.CommitWithWrites = false;
        }));
        var beforeRunner = before.GetRequiredService<ProjectionRunner>();
        await seed.AppendInWavesAsync(before.GetRequiredService<IEventStore>(), 24, () => CatchUpAllAsync(beforeRunner, workers), Ct);
        await CatchUpAllAsync(beforeRunner, workers);

        Assert.Equal(await DumpAsync(other), await DumpAsync(ConnectionString));
        const string Progress = "SELECT string_agg(name || '=' || events_processed, ',' ORDER BY name) FROM pf_projection_progress";
        Assert.Equal(await ScalarAsync<string>(other, Progress), await ScalarAsync<string>(ConnectionString, Progress));
        // Every event counted once: the pumps model's progress is the log's length.
        Assert.Equal(await ScalarAsync<long>(ConnectionString, "SELECT count(*) FROM pf_events"),
            await ScalarAsync<long>(ConnectionString, "SELECT sum(events_processed)::bigint FROM pf_projection_progress WHERE projection = 'pumps'"));

        // The commit rode with the writes: no page took a round trip of its own for the advance.
        var spent = runner.Stages.Snapshot().Since(stagesBefore);
        Assert.True(spent.Pages > 16, $"pages: {spent.Pages}");
        Assert.Equal(TimeSpan.Zero, spent.Stages[(int)PageStage.Advance]);
        Assert.True(spent.Stages[(int)PageStage.Write] > TimeSpan.Zero);
    }

    [Fact]
    public async Task LostCheckpointLock_WritesNothing()
    {
        await Seed().AppendInWavesAsync(Store, 24, () => Task.CompletedTask, Ct);
        var first = Build(ConnectionString, pageSize: 20).GetRequiredService<ProjectionRunner>();
        var second = Build(ConnectionString, pageSize: 20).GetRequiredService<ProjectionRunner>();
        var q = await FullPartitionAsync(first);

        // The second worker (a rebuild or another silo's) moves the checkpoint under the first one's hint.
        Assert.Equal(20, (await second.RunPageAsync(PumpProjection.ProjectionName, q, Ct)).Read);
        var rows = await DumpAsync(ConnectionString);
        var checkpoint = await CheckpointAsync(q);

        var r = await first.RunPageAsync(PumpProjection.ProjectionName, q, Ct);

        Assert.True(r.Moved);
        Assert.Equal(0, r.Applied);
        Assert.Equal(rows, await DumpAsync(ConnectionString));
        Assert.Equal(checkpoint, await CheckpointAsync(q));
    }

    [Fact]
    public async Task FailingWrite_KeepsNothingOfThePage_AndTheRetryAppliesItOnce()
    {
        var seed = Seed();
        await seed.AppendInWavesAsync(Store, 24, () => Task.CompletedTask, Ct);
        var services = Build(ConnectionString, pageSize: 20, configure: s => s.Configure<ProjectionOptions>(o => o.RetryBackoff = TimeSpan.Zero));
        var runner = services.GetRequiredService<ProjectionRunner>();
        var q = await FullPartitionAsync(runner);
        var rows = await DumpAsync(ConnectionString);
        var checkpoint = await CheckpointAsync(q);
        var progress = await ScalarAsync<long>(ConnectionString, $"SELECT events_processed FROM pf_projection_progress WHERE name = '{Partitioning.CheckpointName(PumpProjection.ProjectionName, q)}'");

        // The last write of the pumps page (the daily flow, just before the tail) fails: the tail's COMMIT must not run.
        await ExecAsync(ConnectionString, """
            CREATE FUNCTION pf_test_refuse() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'refused by the test'; END $$;
            CREATE TRIGGER pf_test_refuse BEFORE INSERT OR UPDATE ON pf_daily_flow FOR EACH ROW EXECUTE FUNCTION pf_test_refuse();
            """);
        var r = await runner.RunPageAsync(PumpProjection.ProjectionName, q, Ct);

        Assert.True(r.Failed);
        Assert.Equal(rows, await DumpAsync(ConnectionString));
        Assert.Equal(checkpoint, await CheckpointAsync(q));
        Assert.Equal(progress, await ScalarAsync<long>(ConnectionString, $"SELECT events_processed FROM pf_projection_progress WHERE name = '{Partitioning.CheckpointName(PumpProjection.ProjectionName, q)}'"));

        await ExecAsync(ConnectionString, "DROP TRIGGER pf_test_refuse ON pf_daily_flow; DROP FUNCTION pf_test_refuse()");
        await CatchUpAllAsync(runner);
        Assert.Equal(seed.TotalDeliveredMl(), await ScalarAsync<double>(ConnectionString, "SELECT sum(delivered_ml) FROM pf_daily_flow"), 6);
        Assert.Equal(await ScalarAsync<long>(ConnectionString, "SELECT count(*) FROM pf_events"),
            await ScalarAsync<long>(ConnectionString, "SELECT sum(events_processed)::bigint FROM pf_projection_progress WHERE projection = 'pumps'"));
        Assert.Equal(0L, await ScalarAsync<long>(ConnectionString, "SELECT count(*) FROM pf_projection_parked"));
    }

    [Fact]
    public async Task NarrowCheck_FailsItsStatement_UnlessEveryRowWasUpdated()
    {
        // With the commit in the pumps batch, the narrow update's count is checked by this function inside the batch.
        var e = await Assert.ThrowsAsync<Npgsql.PostgresException>(() => ExecAsync(ConnectionString, "SELECT pf_pumps_narrow_check(2, 3)"));
        Assert.Equal("P0001", e.SqlState);
        Assert.Contains("3 status rows to update in place, 2 found", e.MessageText, StringComparison.Ordinal);
        Assert.Equal(3, await ScalarAsync<int>(ConnectionString, "SELECT pf_pumps_narrow_check(3, 3)"));
    }

    // A log partition whose first pumps page (committed by this runner, so it holds the hint) was full: it has more.
    private static async Task<int> FullPartitionAsync(ProjectionRunner runner)
    {
        for (var q = 0; q < EventStore.Log.LogPartitioning.Count; q++)
        {
            var r = await runner.RunPageAsync(PumpProjection.ProjectionName, q, Ct);
            if (r.Applied == 20)
            {
                return q;
            }
        }

        throw new InvalidOperationException("No log partition has two pages of pump events.");
    }

    private async Task<string> CheckpointAsync(int q) =>
        await ScalarAsync<string>(ConnectionString, $"SELECT transaction_id::text || '/' || global_position FROM pf_checkpoints WHERE name = '{Partitioning.CheckpointName(PumpProjection.ProjectionName, q)}'");
}
