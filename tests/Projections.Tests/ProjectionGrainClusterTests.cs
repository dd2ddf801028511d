using Microsoft.Extensions.DependencyInjection;
using Orleans.TestingHost;
using PumpFleet.EventStore;
using PumpFleet.Grains;
using PumpFleet.Projections.Tests.Seed;
using PumpFleet.TestSupport;
using PumpFleet.ReadModels;

namespace PumpFleet.Projections.Tests;

/// <summary>The projection grains in a two-silo cluster: they keep the read models current, also after a silo dies.</summary>
public sealed class ProjectionGrainClusterTests(PostgresFixture pg) : ProjectionTestBase(pg)
{
    [Fact]
    public async Task ProjectionGrains_KeepTheReadModelsCurrent_AcrossTheLossOfASilo()
    {
        // The reference first: the gap-safe reader stops below the oldest open transaction on the server, and a silo
        // killed in-process can leave its page transaction open (a real crash drops the connection and PostgreSQL
        // aborts it).
        var seed = Seed();
        var reference = await Pg.CreateDatabaseAsync("ref", typeof(PumpProjection).Assembly);
        var refServices = Build(reference);
        // The same two waves as the cluster gets below: events carry their wave's receive time, and the ingest read
        // model counts by the day of receipt, so one wave of 72 h would put the second half's events on another day.
        await seed.AppendInWavesAsync(refServices.GetRequiredService<IEventStore>(), 36, () => Task.CompletedTask, Ct);
        await CatchUpAllAsync(refServices.GetRequiredService<ProjectionRunner>());
        var expected = await DumpAsync(reference);

        var cs = ConnectionString;
        await using var cluster = await PumpCluster.StartAsync(cs, silos: 2,
            configure: s => s.Configure<ProjectionOptions>(o =>
            {
                o.PollInterval = TimeSpan.FromMilliseconds(100);
                o.KeepAliveInterval = TimeSpan.FromSeconds(1);
                o.Partitions = 2;
                o.PageSize = 50;
            }),
            configureSilo: silo => silo.AddPumpFleetProjections());

        for (var i = 0; i < seed.Serials.Count; i++)
        {
            await seed.AppendAsync(Store, i, 0, 36, Ct);
        }

        await Eventually.TrueAsync(async () => await ScalarAsync<long>(cs, "SELECT count(*) FROM pf_pump_status") == 12
                && await AllCaughtUpAsync(cs),
            TimeSpan.FromSeconds(60), "the grains projected the first half");

        // An abrupt silo loss: whatever projection grains it hosted come back on the survivor via the keeper.
        await cluster.KillSiloAsync(1);
        // In-process, the dead silo's sockets stay open; a real crash closes them and PostgreSQL aborts the
        // transaction of a page in flight. Do what the server would do.
        await ExecAsync(cs, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() AND state LIKE 'idle in transaction%' AND pid <> pg_backend_pid()");
        for (var i = 0; i < seed.Serials.Count; i++)
        {
            await seed.AppendAsync(Store, i, 36, 72, Ct);
        }

        await Eventually.TrueAsync(async () =>
                Math.Abs(await ScalarAsync<double>(cs, "SELECT coalesce(sum(delivered_ml), 0) FROM pf_daily_flow") - seed.TotalDeliveredMl()) < 1e-6
                && await ScalarAsync<long>(cs, "SELECT coalesce(sum(alarms), 0) FROM pf_cohort_stats") == 5
                && await ScalarAsync<long>(cs, "SELECT count(*) FROM pf_alarm_log WHERE cleared_at IS NULL") == 2
                && await AllCaughtUpAsync(cs),
            TimeSpan.FromSeconds(60), "the surviving silo projected the second half");

        // Nothing lost, nothing twice: the same as a from-zero build of the same log.
        Assert.Equal(expected, await DumpAsync(cs));
    }

    [Fact]
    public async Task Metrics_ReportLagUntilCaughtUp_AndFleetCounts()
    {
        var services = new ServiceCollection();
        services.AddLogging();
        services.AddMetrics();
        services.AddSingleton<Microsoft.Extensions.Configuration.IConfiguration>(new Microsoft.Extensions.Configuration.ConfigurationBuilder().Build());
        services.AddPumpFleetEventStore(ConnectionString);
        services.AddPumpFleetReadModels();
        services.AddSingleton<ProjectionMetrics>();
        await using var provider = services.BuildServiceProvider();
        var metrics = provider.GetRequiredService<ProjectionMetrics>();
        var runner = provider.GetRequiredService<ProjectionRunner>();
        var seed = Seed();
        for (var i = 0; i < seed.Serials.Count; i++)
        {
            await seed.AppendAsync(Store, i, 0, 36, Ct);
        }

        await CatchUpAllAsync(runner);
        for (var i = 0; i < seed.Serials.Count; i++)
        {
            await seed.AppendAsync(Store, i, 36, 72, Ct);
        }

        var behind = await metrics.RefreshAsync(Ct);
        Assert.All(behind.Lag, l => Assert.True(l.Events > 0 && l.Seconds > 0, $"{l.Projection} should lag"));
        // One lag per projection.
        Assert.Equal(runner.Names.Count, behind.Lag.Count);

        await CatchUpAllAsync(runner);
        var current = await metrics.RefreshAsync(Ct);
        Assert.All(current.Lag, l => Assert.Equal(0, l.Events));
        Assert.All(current.Lag, l => Assert.Equal(0, l.Seconds));
        Assert.Equal(12, current.PumpsByStatus.Values.Sum());
        Assert.Equal(2, current.ActiveAlarms.Where(a => a.Kind == "MOTOR_STALL").Sum(a => a.Count));
        Assert.Equal(2, current.OpenAnomalies.Sum(a => a.Count));
        // The seeded fleet's last message is from November 2026's first days: all silent by the wall clock.
        Assert.Equal(12, current.Silent);
        // The at-risk counts come from the same pass over the status table as the counts by status: as a query of their own.
        foreach (var (hours, count) in new[] { (24, current.Risk24h), (72, current.Risk72h) })
        {
            Assert.Equal(await ScalarAsync<long>(ConnectionString, $"""
                SELECT count(*) FROM pf_pump_status
                WHERE least(forecast_empty_at, next_refill_due_at) < now() + interval '{hours} hours' AND status <> 'inactive'
                """), count);
        }
    }
}
