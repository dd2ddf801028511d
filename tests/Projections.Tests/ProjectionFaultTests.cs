using Microsoft.Extensions.DependencyInjection;
using Npgsql;
using PumpFleet.EventStore;
using PumpFleet.EventStore.Local;
using PumpFleet.Grains;
using PumpFleet.ReadModels;
using PumpFleet.TestSupport;

namespace PumpFleet.Projections.Tests;

/// <summary>
/// The projection grains under faults on a real cluster and a real PostgreSQL: a silo killed while pages are being
/// applied, and the database restarted. Exact counts of the read models against the log: nothing applied twice,
/// nothing skipped.
/// </summary>
public sealed class ProjectionFaultTests(PostgresFixture pg) : ProjectionTestBase(pg)
{
    private static readonly Action<IServiceCollection> FastGrains = s => s.Configure<ProjectionOptions>(o =>
    {
        o.PollInterval = TimeSpan.FromMilliseconds(100);
        o.KeepAliveInterval = TimeSpan.FromSeconds(1);
        o.Partitions = 4;
        o.PageSize = 20;
        o.CatchUpBudget = TimeSpan.FromMilliseconds(200);
    });

    [Fact]
    public async Task SiloKilledWhileApplying_ItsWorkMovesAndResumes_EveryEventAppliedExactlyOnce()
    {
        var cs = ConnectionString;
        var seed = Seed(24);
        await using var cluster = await PumpCluster.StartAsync(cs, silos: 2, configure: FastGrains, configureSilo: silo => silo.AddPumpFleetProjections());

        // The victim is whichever silo first reaches its third page: after two pages of its own it holds that
        // page between the read-model writes and the commit (the worst moment) and so does every later page of that
        // silo, until the silo is dead. So at the kill its grains have moved their checkpoints and still have work,
        // however fast the machine (a kill timed by the clock could come after the last page). Installed while the log
        // is empty, so no page runs before the hooks.
        var victim = -1;
        var chosen = new TaskCompletionSource<int>(TaskCreationOptions.RunContinuationsAsynchronously);
        var killed = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var pages = new int[cluster.Cluster.Silos.Count];
        for (var s = 0; s < pages.Length; s++)
        {
            var silo = s;
            cluster.Cluster.Silos[s].ServiceProvider.GetRequiredService<ProjectionRunner>().BeforeCommit = async (_, ct) =>
            {
                if (Interlocked.Increment(ref pages[silo]) <= 2)
                {
                    return;
                }

                var first = Interlocked.CompareExchange(ref victim, silo, -1);
                if (first == -1)
                {
                    chosen.TrySetResult(silo);
                }

                if (first == -1 || first == silo)
                {
                    // Never commits: after the kill this throws, so even a page still running on the dead silo rolls back.
                    await killed.Task.WaitAsync(ct);
                }
            };
        }

        for (var i = 0; i < seed.Serials.Count; i++)
        {
            await seed.AppendAsync(Store, i, 0, 72, Ct);
        }

        var events = await ScalarAsync<long>(cs, "SELECT count(*) FROM pf_events");
        var dead = await chosen.Task.WaitAsync(TimeSpan.FromSeconds(60), Ct);
        // The victim's first pages passed the hook; their commits may still be on their way.
        await Eventually.TrueAsync(async () => await ScalarAsync<long>(cs, "SELECT coalesce(sum(events_processed), 0) FROM pf_projection_progress") > 0,
            TimeSpan.FromSeconds(60), "the grains to commit their first pages");
        var atKill = await ScalarAsync<long>(cs, "SELECT coalesce(sum(events_processed), 0) FROM pf_projection_progress");
        await cluster.KillSiloAsync(dead);
        // In-process, the dead silo's sockets stay open; a real crash closes them and PostgreSQL aborts the
        // transaction of a page in flight. Do what the server would do.
        await ExecAsync(cs, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() AND state LIKE 'idle in transaction%' AND pid <> pg_backend_pid()");
        killed.SetException(new InvalidOperationException("the silo was killed"));
        Assert.InRange(atKill, 1, (Runner.Names.Count * events) - 1);
        TestContext.Current.TestOutputHelper?.WriteLine($"killed silo {dead} with {atKill} of {Runner.Names.Count * events} events applied");

        await Eventually.TrueAsync(() => AllCaughtUpAsync(cs), TimeSpan.FromSeconds(120), "the surviving silo to finish every log partition");
        await AssertExactlyOnceAsync(cs, seed, events);
    }

    [Fact]
    public async Task PostgresRestarted_WorkersResumeByThemselves_EveryEventAppliedExactlyOnce()
    {
        // A server of its own: the shared one serves the other tests.
        await using var server = await PrivatePostgres.StartAsync(durable: false, ct: Ct);
        await using (var conn = new NpgsqlConnection(server.ConnectionString()))
        {
            await conn.OpenAsync(Ct);
            await using var cmd = new NpgsqlCommand("CREATE DATABASE restart", conn);
            await cmd.ExecuteNonQueryAsync(Ct);
        }

        var cs = server.ConnectionString("restart") + ";Timeout=3;Command Timeout=10";
        await using (var ds = NpgsqlDataSource.Create(cs))
        {
            await new SchemaMigrator(ds, [new(typeof(PumpProjection).Assembly), new(typeof(ProjectionRunner).Assembly)],
                Microsoft.Extensions.Logging.Abstractions.NullLogger<SchemaMigrator>.Instance).MigrateAsync(Ct);
        }

        var seed = Seed(12);
        var before = Build(cs).GetRequiredService<IEventStore>();
        for (var i = 0; i < seed.Serials.Count; i++)
        {
            await seed.AppendAsync(before, i, 0, 36, Ct);
        }

        await using var cluster = await PumpCluster.StartAsync(cs, silos: 1, configure: FastGrains, configureSilo: silo => silo.AddPumpFleetProjections());
        await Eventually.TrueAsync(() => AllCaughtUpAsync(cs), TimeSpan.FromSeconds(60), "the grains to project the first half");

        await server.StopAsync();
        await server.RestartAsync();

        // A fresh client for the test's own appends (the silo's pools keep their broken connections: they must cope).
        var after = Build(cs).GetRequiredService<IEventStore>();
        await Eventually.TrueAsync(async () =>
        {
            await using var conn = new NpgsqlConnection(cs);
            await conn.OpenAsync(Ct);
            return true;
        }, TimeSpan.FromSeconds(30), "the database to accept connections again");
        for (var i = 0; i < seed.Serials.Count; i++)
        {
            await seed.AppendAsync(after, i, 36, 72, Ct);
        }

        var events = await ScalarAsync<long>(cs, "SELECT count(*) FROM pf_events");
        await Eventually.TrueAsync(() => AllCaughtUpAsync(cs), TimeSpan.FromSeconds(90), "the grains to resume after the restart without help");
        await AssertExactlyOnceAsync(cs, seed, events);
    }

    // Exact counts, read model against log: each projection committed every event once (its progress rows count the
    // events of committed pages), one status row per pump at the pump's last version, one alarm-log row per raised
    // alarm, the delivered volume once, and nothing parked (a dependency fault never parks).
    private static async Task AssertExactlyOnceAsync(string cs, Seed.FleetSeed seed, long events)
    {
        foreach (var name in new[] { PumpProjection.ProjectionName, AnomalyProjection.ProjectionName, CohortProjection.ProjectionName, TherapyProjection.ProjectionName })
        {
            Assert.Equal(events, await ScalarAsync<long>(cs, $"SELECT coalesce(sum(events_processed), 0) FROM pf_projection_progress WHERE projection = '{name}'"));
        }

        Assert.Equal(seed.Serials.Count, await ScalarAsync<long>(cs, "SELECT count(*) FROM pf_pump_status"));
        Assert.Equal(
            await ScalarAsync<long>(cs, "SELECT count(*) FROM pf_events WHERE stream_id IN (SELECT serial FROM pf_pump_status)"),
            await ScalarAsync<long>(cs, "SELECT sum(version) FROM pf_pump_status"));
        Assert.Equal(0L, await ScalarAsync<long>(cs, "SELECT count(*) FROM pf_pump_status s WHERE version <> (SELECT max(version) FROM pf_events e WHERE e.stream_id = s.serial)"));
        Assert.Equal(
            await ScalarAsync<long>(cs, "SELECT count(*) FROM pf_events WHERE event_type = 'alarm.raised'"),
            await ScalarAsync<long>(cs, "SELECT count(*) FROM pf_alarm_log"));
        Assert.Equal(seed.TotalDeliveredMl(), await ScalarAsync<double>(cs, "SELECT sum(delivered_ml) FROM pf_daily_flow"), 6);
        Assert.Equal(seed.Serials.Count, await ScalarAsync<long>(cs, "SELECT sum(pumps) FROM pf_cohort_stats"));
        Assert.Equal(0L, await ScalarAsync<long>(cs, "SELECT count(*) FROM pf_projection_parked"));
    }
}
