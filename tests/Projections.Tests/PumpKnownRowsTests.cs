using Microsoft.Extensions.DependencyInjection;
using PumpFleet.EventStore;
using PumpFleet.ReadModels;
using PumpFleet.TestSupport;

namespace PumpFleet.Projections.Tests;

/// <summary>
/// The pumps projection's writes without <c>ON CONFLICT</c> where the page knows whether the row exists (issue 14, h14t,
/// <see cref="PumpProjectionOptions.KnownRowWrites"/>): a pump's newest daily-flow row is updated, a later day's row
/// inserted, a new pump's status row inserted. They must leave exactly the rows of the upserts, whatever the pages'
/// boundaries and whichever worker held the pump last, and a wrong guess must fail the whole page, not lose a delta.
/// </summary>
public sealed class PumpKnownRowsTests(PostgresFixture pg) : ProjectionTestBase(pg)
{
    // Waves of 6 hours: a page continues the day of the page before (an update) as often as it starts a new one (an insert).
    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    public async Task KnownRowWrites_LeaveTheSameRows_AsTheUpserts(int workers)
    {
        var seed = Seed();
        var now = Build(ConnectionString, pageSize: 45, partitions: workers);
        var runner = now.GetRequiredService<ProjectionRunner>();
        await seed.AppendInWavesAsync(Store, 6, () => CatchUpAllAsync(runner, workers), Ct);
        await CatchUpAllAsync(runner, workers);

        var other = await Pg.CreateDatabaseAsync("upserts", typeof(PumpProjection).Assembly);
        var upserts = Build(other, pageSize: 45, partitions: workers, configure: s => s.Configure<PumpProjectionOptions>(o => o.KnownRowWrites = false));
        var upsertRunner = upserts.GetRequiredService<ProjectionRunner>();
        await seed.AppendInWavesAsync(upserts.GetRequiredService<IEventStore>(), 6, () => CatchUpAllAsync(upsertRunner, workers), Ct);
        await CatchUpAllAsync(upsertRunner, workers);

        Assert.True(Pumps(now).KeyedFlowRowsWritten >= 20, $"keyed flow rows: {Pumps(now).KeyedFlowRowsWritten}");
        Assert.Equal(0, Pumps(upserts).KeyedFlowRowsWritten);
        Assert.Equal(await DumpAsync(other), await DumpAsync(ConnectionString));
        // Every delivered dose counted once, in the day it belongs to.
        Assert.Equal(seed.TotalDeliveredMl(), await ScalarAsync<double>(ConnectionString, "SELECT sum(delivered_ml) FROM pf_daily_flow"), 6);
    }

    [Fact]
    public async Task AFlowRowGoneBehindTheWorker_FailsItsPage_KeepsNothingOfIt_AndTheRetryAppliesItOnce()
    {
        var seed = Seed();
        var services = Build(ConnectionString, pageSize: 500, configure: s => s.Configure<ProjectionOptions>(o => o.RetryBackoff = TimeSpan.Zero));
        var runner = services.GetRequiredService<ProjectionRunner>();
        for (var i = 0; i < seed.Serials.Count; i++)
        {
            await seed.AppendAsync(Store, i, 0, 6, Ct);
        }

        await CatchUpAllAsync(runner);

        // The reference: the same log caught up by a worker nobody interferes with.
        var other = await Pg.CreateDatabaseAsync("reference", typeof(PumpProjection).Assembly);
        var reference = Build(other, pageSize: 500);
        var referenceStore = reference.GetRequiredService<IEventStore>();
        for (var i = 0; i < seed.Serials.Count; i++)
        {
            await seed.AppendAsync(referenceStore, i, 0, 6, Ct);
            await seed.AppendAsync(referenceStore, i, 6, 12, Ct);
        }

        await CatchUpAllAsync(reference.GetRequiredService<ProjectionRunner>());

        // The worker remembers the first pump's newest flow day (its first day): that row goes missing behind its back
        // (impossible while only the checkpoint holder writes), and the next hours continue the same day.
        var serial = seed.Serials[0];
        var row = await ScalarAsync<string>(ConnectionString, $"SELECT to_jsonb(f)::text FROM pf_daily_flow f WHERE serial = '{serial}' ORDER BY day DESC LIMIT 1");
        await ExecAsync(ConnectionString, $"DELETE FROM pf_daily_flow WHERE serial = '{serial}' AND day = (SELECT max(day) FROM pf_daily_flow WHERE serial = '{serial}')");
        var flowRows = await ScalarAsync<long>(ConnectionString, $"SELECT count(*) FROM pf_daily_flow WHERE serial = '{serial}'");
        for (var i = 0; i < seed.Serials.Count; i++)
        {
            await seed.AppendAsync(Store, i, 6, 12, Ct);
        }

        var q = await ScalarAsync<int>(ConnectionString, $"SELECT log_partition FROM pf_events WHERE stream_id = '{serial}' LIMIT 1");
        var checkpointName = Partitioning.CheckpointName(PumpProjection.ProjectionName, q);
        var checkpoint = await ScalarAsync<string>(ConnectionString, $"SELECT transaction_id::text || '/' || global_position FROM pf_checkpoints WHERE name = '{checkpointName}'");
        var version = await ScalarAsync<long>(ConnectionString, $"SELECT version FROM pf_pump_status WHERE serial = '{serial}'");

        var r = await runner.RunPageAsync(PumpProjection.ProjectionName, q, Ct);

        // The UPDATE found no row: the page failed before its COMMIT, so nothing of it was kept.
        Assert.True(r.Failed);
        Assert.Equal(checkpoint, await ScalarAsync<string>(ConnectionString, $"SELECT transaction_id::text || '/' || global_position FROM pf_checkpoints WHERE name = '{checkpointName}'"));
        Assert.Equal(version, await ScalarAsync<long>(ConnectionString, $"SELECT version FROM pf_pump_status WHERE serial = '{serial}'"));
        Assert.Equal(flowRows, await ScalarAsync<long>(ConnectionString, $"SELECT count(*) FROM pf_daily_flow WHERE serial = '{serial}'"));

        // The row back, the retry (the page's pumps forgotten, so their newest days read again) applies the page once.
        await ExecAsync(ConnectionString, $"INSERT INTO pf_daily_flow SELECT * FROM jsonb_populate_record(NULL::pf_daily_flow, '{row}'::jsonb)");
        await CatchUpAllAsync(runner);
        Assert.Equal(await DumpAsync(other), await DumpAsync(ConnectionString));
        Assert.Equal(0L, await ScalarAsync<long>(ConnectionString, "SELECT count(*) FROM pf_projection_parked"));
    }

    [Fact]
    public async Task RowsCheck_FailsItsStatement_UnlessEveryRowWasUpdated()
    {
        var e = await Assert.ThrowsAsync<Npgsql.PostgresException>(() => ExecAsync(ConnectionString, "SELECT pf_pumps_rows_check(1, 2, 'daily flow')"));
        Assert.Equal("P0001", e.SqlState);
        Assert.Contains("2 daily flow rows to update in place, 1 found", e.MessageText, StringComparison.Ordinal);
        Assert.Equal(2, await ScalarAsync<int>(ConnectionString, "SELECT pf_pumps_rows_check(2, 2, 'daily flow')"));
    }

    private static PumpProjection Pumps(IServiceProvider services) => services.GetServices<IProjection>().OfType<PumpProjection>().Single();
}
