using Microsoft.Extensions.DependencyInjection;
using Npgsql;
using PumpFleet.EventStore;
using PumpFleet.Projections.Tests.Seed;
using PumpFleet.ReadModels;
using PumpFleet.TestSupport;

namespace PumpFleet.Projections.Tests;

/// <summary>
/// Pipelined pages (issue 14, h14v, <see cref="ProjectionOptions.PipelinedPages"/>): a worker prepares the next log
/// partition's page while the current page's writes and commit are in flight. Each page must still commit its rows and
/// its checkpoint together or not at all, a page that fails must roll back alone, and a catch-up that dies with two pages
/// open must leave nothing half-applied: the next worker resumes from the committed checkpoints to the same rows.
/// </summary>
public sealed class PipelinedPagesTests(PostgresFixture pg) : ProjectionTestBase(pg)
{
    private const string Pumps = PumpProjection.ProjectionName;

    // The switch is off by default (docs/benchmarks.md): these tests turn it on.
    private static void Pipelined(IServiceCollection services) => services.Configure<ProjectionOptions>(o => o.PipelinedPages = true);

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    public async Task PipelinedPages_LeaveTheSameRowsAndProgress_AsOnePageAtATime(int workers)
    {
        var seed = Seed();
        // Pages of 10: several full pages per partition and wave (only a full page is pipelined).
        var now = Build(ConnectionString, pageSize: 10, partitions: workers, configure: Pipelined);
        var runner = now.GetRequiredService<ProjectionRunner>();
        var stagesBefore = runner.Stages.Snapshot();
        await seed.AppendInWavesAsync(Store, 12, async () =>
        {
            await LogVisibleAsync(ConnectionString);
            await CatchUpAllAsync(runner, workers);
        }, Ct);
        await CatchUpAllAsync(runner, workers);

        var other = await Pg.CreateDatabaseAsync("onebyone", typeof(PumpProjection).Assembly);
        var oneByOne = Build(other, pageSize: 10, partitions: workers, configure: s => s.Configure<ProjectionOptions>(o => o.PipelinedPages = false));
        var oneByOneRunner = oneByOne.GetRequiredService<ProjectionRunner>();
        var oneByOneBefore = oneByOneRunner.Stages.Snapshot();
        await seed.AppendInWavesAsync(oneByOne.GetRequiredService<IEventStore>(), 12, () => CatchUpAllAsync(oneByOneRunner, workers), Ct);
        await CatchUpAllAsync(oneByOneRunner, workers);

        // The pipeline ran at all (pages prepared while another was in flight), and the other shape never overlapped.
        Assert.True(runner.Stages.Snapshot().Since(stagesBefore).Overlapped > 10, runner.Stages.Snapshot().Since(stagesBefore).PerPage());
        Assert.Equal(0, oneByOneRunner.Stages.Snapshot().Since(oneByOneBefore).Overlapped);
        Assert.Equal(await DumpAsync(other), await DumpAsync(ConnectionString));
        const string Progress = "SELECT string_agg(name || '=' || events_processed, ',' ORDER BY name) FROM pf_projection_progress";
        Assert.Equal(await ScalarAsync<string>(other, Progress), await ScalarAsync<string>(ConnectionString, Progress));
        await AssertEveryEventOnceAsync(seed);
    }

    // A page whose write fails (a constraint: the projection's fault) while the next partition's page is prepared: that
    // page and every other partition commit, the failed one keeps nothing and is retried from its checkpoint.
    [Fact]
    public async Task FailingPage_RollsBackAlone_TheOtherPartitionsCommit_AndTheRetryAppliesItOnce()
    {
        var seed = Seed();
        await seed.AppendInWavesAsync(Store, 72, () => Task.CompletedTask, Ct);
        var services = Build(ConnectionString, pageSize: 30, configure: s => s.Configure<ProjectionOptions>(o =>
        {
            o.PipelinedPages = true;
            o.RetryBackoff = TimeSpan.FromMinutes(1);
        }));
        var runner = services.GetRequiredService<ProjectionRunner>();
        // The fleet's first pump is the first appended in its log partition, so that partition's first page holds its doses.
        var serial = seed.Serials[0];
        var q = await ScalarAsync<int>(ConnectionString, $"SELECT log_partition FROM pf_events WHERE stream_id = '{serial}' LIMIT 1");
        await ExecAsync(ConnectionString, $"""
            CREATE FUNCTION pf_test_refuse() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN IF NEW.serial = '{serial}' THEN RAISE EXCEPTION 'refused by the test'; END IF; RETURN NEW; END $$;
            CREATE TRIGGER pf_test_refuse BEFORE INSERT OR UPDATE ON pf_daily_flow FOR EACH ROW EXECUTE FUNCTION pf_test_refuse();
            """);

        // Partition q fails on its first page and waits for its (long) backoff; the others go to the end of the log.
        await LogVisibleAsync(ConnectionString);
        var stagesBefore = runner.Stages.Snapshot();
        await Eventually.TrueAsync(async () =>
        {
            await runner.CatchUpAsync(Pumps, 0, 1, TimeSpan.FromMinutes(5), Ct);
            for (var p = 0; p < EventStore.Log.LogPartitioning.Count; p++)
            {
                if (p != q && !await runner.IsCaughtUpAsync(Pumps, p, EventStore.Log.LogPartitioning.Count, Ct))
                {
                    return false;
                }
            }

            return true;
        }, TimeSpan.FromSeconds(60), "every other partition caught up", TimeSpan.FromMilliseconds(20));

        Assert.True(runner.Stages.Snapshot().Since(stagesBefore).Overlapped > 0);
        // Nothing of partition q: no checkpoint moved, no row of its pumps, no progress.
        var qPumps = $"SELECT count(*) FROM pf_pump_status s WHERE s.serial IN (SELECT stream_id FROM pf_events WHERE log_partition = {q})";
        Assert.Equal(0L, await ScalarAsync<long>(ConnectionString, qPumps));
        Assert.Equal(0L, await ScalarAsync<long>(ConnectionString,
            $"SELECT count(*) FROM pf_projection_progress WHERE name = '{Partitioning.CheckpointName(Pumps, q)}'"));
        Assert.Equal(0L, await ScalarAsync<long>(ConnectionString,
            $"SELECT count(*) FROM pf_checkpoints WHERE name = '{Partitioning.CheckpointName(Pumps, q)}' AND global_position > 0"));
        Assert.Equal(await ScalarAsync<long>(ConnectionString, $"SELECT count(*) FROM pf_events WHERE log_partition <> {q}"),
            await ScalarAsync<long>(ConnectionString, $"SELECT sum(events_processed)::bigint FROM pf_projection_progress WHERE projection = '{Pumps}'"));

        await ExecAsync(ConnectionString, "DROP TRIGGER pf_test_refuse ON pf_daily_flow; DROP FUNCTION pf_test_refuse()");
        var retry = Build(ConnectionString, pageSize: 30).GetRequiredService<ProjectionRunner>();
        await CatchUpAllAsync(retry);
        await AssertAsTheReferenceAsync(seed, waveHours: 72);
    }

    // The worker dies with two pages open: the first page's connection is killed while its batch (with its COMMIT) waits
    // in the server, the second page has been prepared and sent meanwhile. The first keeps nothing, the second commits
    // whole, and a new worker resumes from the committed checkpoints to the rows of an undisturbed catch-up.
    [Fact]
    public async Task KilledMidPage_WithTheNextPageInFlight_KeepsEachPageWholeOrNothing()
    {
        var seed = Seed();
        await seed.AppendInWavesAsync(Store, 72, () => Task.CompletedTask, Ct);
        var runner = Build(ConnectionString, pageSize: 30, configure: Pipelined).GetRequiredService<ProjectionRunner>();
        await LogVisibleAsync(ConnectionString);
        await using var gate = await Gate.CloseAsync(ConnectionString);
        var catchUp = Task.Run(() => runner.CatchUpAsync(Pumps, 0, 1, TimeSpan.FromMinutes(5), Ct), Ct);

        // Two page transactions wait at the gate at once (only a pipelined worker gets there); the older one is killed.
        var pids = await gate.WaitingAsync(2);
        await gate.KillAsync(pids[0]);
        await gate.OpenAsync();

        // A dependency fault, not the events' fault: the catch-up throws (the grain retries at its next tick).
        await Assert.ThrowsAnyAsync<NpgsqlException>(() => catchUp);

        // Exactly one page committed: one partition's checkpoint moved, by one page, with its progress row and its rows.
        Assert.Equal(1L, await ScalarAsync<long>(ConnectionString, $"SELECT count(*) FROM pf_checkpoints WHERE name LIKE 'projection:{Pumps}:%' AND global_position > 0"));
        Assert.Equal(30L, await ScalarAsync<long>(ConnectionString, $"SELECT coalesce(sum(events_processed), 0)::bigint FROM pf_projection_progress WHERE projection = '{Pumps}'"));
        var committed = await ScalarAsync<string>(ConnectionString, $"SELECT name FROM pf_projection_progress WHERE projection = '{Pumps}'");
        Assert.Equal(committed, await ScalarAsync<string>(ConnectionString, $"SELECT name FROM pf_checkpoints WHERE name LIKE 'projection:{Pumps}:%' AND global_position > 0"));
        var q = int.Parse(committed[(committed.LastIndexOf(':') + 1)..committed.LastIndexOf("of", StringComparison.Ordinal)], System.Globalization.CultureInfo.InvariantCulture);
        Assert.Equal(0L, await ScalarAsync<long>(ConnectionString,
            $"SELECT count(*) FROM pf_pump_status s WHERE s.serial NOT IN (SELECT stream_id FROM pf_events WHERE log_partition = {q})"));
        Assert.True(await ScalarAsync<long>(ConnectionString, "SELECT count(*) FROM pf_pump_status") > 0);

        await gate.DropAsync();
        var next = Build(ConnectionString, pageSize: 30).GetRequiredService<ProjectionRunner>();
        await CatchUpAllAsync(next);
        await AssertAsTheReferenceAsync(seed, waveHours: 72);
    }

    // A rebuild asked for while two pages are open waits for both (it locks every checkpoint of the projection), so
    // neither writes after it has emptied the tables; the worker then replays the log to the rows of a catch-up from zero.
    [Fact]
    public async Task Rebuild_WithTwoPagesOpen_WaitsForBoth_AndNothingIsWrittenAfterIt()
    {
        // The first half of the log caught up, so every partition's checkpoint row exists (a rebuild locks the committed
        // rows; a page's first insert of its row is invisible to it until that page commits).
        var seed = Seed();
        // The worker reads the log itself, not through the process's shared tail: its catch-up below follows its own read
        // of every partition's end by milliseconds, and a tail read that young would answer "nothing new" (by design:
        // EventStore:TailCache:MaxAge), so no page would reach the gate.
        var runner = Build(ConnectionString, pageSize: 30, configure: s =>
        {
            Pipelined(s);
            s.Configure<EventStore.Log.LogTailCacheOptions>(o => o.Enabled = false);
        }).GetRequiredService<ProjectionRunner>();
        for (var i = 0; i < seed.Serials.Count; i++)
        {
            await seed.AppendAsync(Store, i, 0, 36, Ct);
        }

        await CatchUpAllAsync(runner);
        for (var i = 0; i < seed.Serials.Count; i++)
        {
            await seed.AppendAsync(Store, i, 36, 72, Ct);
        }

        await LogVisibleAsync(ConnectionString);
        await using var gate = await Gate.CloseAsync(ConnectionString);
        var catchUp = Task.Run(() => runner.CatchUpAsync(Pumps, 0, 1, TimeSpan.FromMinutes(5), Ct), Ct);
        await gate.WaitingAsync(2);

        var rebuild = Task.Run(() => Services.GetRequiredService<ProjectionRebuilder>().RebuildAsync(Pumps, Ct), Ct);
        // The rebuild waits on a checkpoint row one of the open pages holds.
        await Eventually.TrueAsync(async () => await ScalarAsync<long>(ConnectionString, $"""
            SELECT count(*) FROM pg_stat_activity
             WHERE datname = current_database() AND wait_event_type = 'Lock' AND wait_event <> 'advisory' AND query LIKE '%pf_checkpoints%'
            """) == 1, TimeSpan.FromSeconds(30), "the rebuild to wait for the open pages", TimeSpan.FromMilliseconds(20));
        await gate.OpenAsync();
        await rebuild;
        await catchUp;

        // Whatever pages committed before the rebuild, none wrote after it: the read model and checkpoints are empty or at
        // pages read after the reset (the catch-up goes on with the partitions after the first two).
        await gate.DropAsync();
        await CatchUpAllAsync(runner);
        await AssertAsTheReferenceAsync(seed, waveHours: 36);
    }

    // The rows of the same log caught up one page at a time by an undisturbed worker, and every event counted once.
    private async Task AssertAsTheReferenceAsync(FleetSeed seed, int waveHours)
    {
        Assert.Equal(await ReferenceDumpAsync(seed, waveHours), await DumpAsync(ConnectionString));
        await AssertEveryEventOnceAsync(seed);
    }

    // Every event in the pumps model's progress once, every delivered dose counted once. A tolerance, not a rounding: the
    // sum's last bits depend on how pages group the doses, and rounding to six decimals can fall either side of a boundary.
    private async Task AssertEveryEventOnceAsync(FleetSeed seed)
    {
        Assert.Equal(await ScalarAsync<long>(ConnectionString, "SELECT count(*) FROM pf_events"),
            await ScalarAsync<long>(ConnectionString, $"SELECT sum(events_processed)::bigint FROM pf_projection_progress WHERE projection = '{Pumps}'"));
        var delivered = await ScalarAsync<double>(ConnectionString, "SELECT sum(delivered_ml) FROM pf_daily_flow");
        Assert.InRange(delivered, seed.TotalDeliveredMl() - 1e-6, seed.TotalDeliveredMl() + 1e-6);
    }

    // Every event of the log below the gap-safe horizon. Other tests' transactions on the same server hold the horizon
    // back, and a page read then is short; only a full page is pipelined, so the tests wait until the log is readable.
    private static Task LogVisibleAsync(string connectionString) => Eventually.TrueAsync(
        async () => await ScalarAsync<bool>(connectionString,
            "SELECT coalesce(pg_snapshot_xmin(pg_current_snapshot()) > max(transaction_id), true) FROM pf_events"),
        TimeSpan.FromSeconds(60), "every event below the horizon", TimeSpan.FromMilliseconds(20));

    // The same log caught up one page at a time by a worker nobody interferes with.
    private async Task<string> ReferenceDumpAsync(FleetSeed seed, int waveHours)
    {
        var reference = await Pg.CreateDatabaseAsync("reference", typeof(PumpProjection).Assembly);
        var services = Build(reference, pageSize: 30, configure: s => s.Configure<ProjectionOptions>(o => o.PipelinedPages = false));
        await seed.AppendInWavesAsync(services.GetRequiredService<IEventStore>(), waveHours, () => Task.CompletedTask, Ct);
        await CatchUpAllAsync(services.GetRequiredService<ProjectionRunner>());
        return await DumpAsync(reference);
    }

    // Every daily-flow write waits for an advisory lock the test holds, so each page's batch stops inside the server,
    // with its transaction (and checkpoint lock) open, until the gate opens.
    private sealed class Gate : IAsyncDisposable
    {
        private const long Key = 8_142_014;
        private readonly NpgsqlConnection _conn;

        private Gate(NpgsqlConnection conn) => _conn = conn;

        public static async Task<Gate> CloseAsync(string connectionString)
        {
            await ExecAsync(connectionString, $"""
                CREATE FUNCTION pf_test_gate() RETURNS trigger LANGUAGE plpgsql AS $$
                BEGIN PERFORM pg_advisory_xact_lock_shared({Key}); RETURN NEW; END $$;
                CREATE TRIGGER pf_test_gate BEFORE INSERT OR UPDATE ON pf_daily_flow FOR EACH ROW EXECUTE FUNCTION pf_test_gate();
                """);
            var conn = new NpgsqlConnection(connectionString);
            await conn.OpenAsync(Ct);
            var gate = new Gate(conn);
            await gate.RunAsync($"SELECT pg_advisory_lock({Key})");
            return gate;
        }

        // The backends waiting at the gate, oldest transaction first, once there are `count` of them.
        public async Task<List<int>> WaitingAsync(int count)
        {
            var pids = new List<int>();
            var seen = "";
            try
            {
                await WaitAsync();
            }
            catch (TimeoutException e)
            {
                // What the database's backends were doing instead (the failure's evidence).
                await using var cmd = new NpgsqlCommand(
                    "SELECT string_agg(pid || ' ' || state || ' ' || coalesce(wait_event, '-') || ' ' || left(query, 80), ' | ') FROM pg_stat_activity WHERE datname = current_database()", _conn);
                seen = (string)(await cmd.ExecuteScalarAsync(Ct) ?? "");
                throw new TimeoutException($"{e.Message}; backends: {seen}", e);
            }

            return pids;

            Task WaitAsync() => Eventually.TrueAsync(async () =>
            {
                pids.Clear();
                await using var cmd = new NpgsqlCommand($"""
                    SELECT pid FROM pg_stat_activity
                     WHERE datname = current_database() AND wait_event_type = 'Lock' AND wait_event = 'advisory' AND pid <> {_conn.ProcessID}
                     ORDER BY xact_start
                    """, _conn);
                await using var r = await cmd.ExecuteReaderAsync(Ct);
                while (await r.ReadAsync(Ct))
                {
                    pids.Add(r.GetInt32(0));
                }

                return pids.Count == count;
            }, TimeSpan.FromSeconds(30), $"{count} pages waiting at the gate", TimeSpan.FromMilliseconds(20));
        }

        // Ends a backend and waits until it is gone (so it cannot pass the gate when it opens).
        public async Task KillAsync(int pid)
        {
            await RunAsync($"SELECT pg_terminate_backend({pid})");
            await Eventually.TrueAsync(async () =>
            {
                await using var cmd = new NpgsqlCommand($"SELECT count(*) FROM pg_stat_activity WHERE pid = {pid}", _conn);
                return (long)(await cmd.ExecuteScalarAsync(Ct))! == 0;
            }, TimeSpan.FromSeconds(30), "the killed backend to end", TimeSpan.FromMilliseconds(20));
        }

        public Task OpenAsync() => RunAsync($"SELECT pg_advisory_unlock({Key})");

        public Task DropAsync() => RunAsync("DROP TRIGGER pf_test_gate ON pf_daily_flow; DROP FUNCTION pf_test_gate()");

        public ValueTask DisposeAsync() => _conn.DisposeAsync();

        private async Task RunAsync(string sql)
        {
            await using var cmd = new NpgsqlCommand(sql, _conn);
            await cmd.ExecuteNonQueryAsync(Ct);
        }
    }
}
