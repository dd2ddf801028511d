using PumpFleet.Contracts.Grains;
using PumpFleet.Projections.Tests.Seed;
using PumpFleet.TestSupport;
using PumpFleet.ReadModels;

namespace PumpFleet.Projections.Tests;

public sealed class ProjectionRunnerTests(PostgresFixture pg) : ProjectionTestBase(pg)
{
    [Fact]
    public async Task CatchUp_FillsEveryReadModel()
    {
        var seed = Seed();
        await seed.AppendInWavesAsync(Store, 72, () => Task.CompletedTask, Ct);
        await CatchUpAllAsync(Runner);

        Assert.Equal(12L, await ScalarAsync<long>(ConnectionString, "SELECT count(*) FROM pf_pump_status"));
        Assert.Equal(seed.TotalDeliveredMl(), await ScalarAsync<double>(ConnectionString, "SELECT sum(delivered_ml) FROM pf_daily_flow"), 6);
        // Pumps 1, 5, 9 raise LOW_RESERVOIR and clear it; pumps 3 and 10 raise MOTOR_STALL.
        Assert.Equal(5L, await ScalarAsync<long>(ConnectionString, "SELECT count(*) FROM pf_alarm_log"));
        Assert.Equal(2L, await ScalarAsync<long>(ConnectionString, "SELECT count(*) FROM pf_alarm_log WHERE cleared_at IS NULL"));
        Assert.Equal("critical", await ScalarAsync<string>(ConnectionString, "SELECT status FROM pf_pump_status WHERE serial = 'SN0003'"));
        Assert.Equal(new[] { "MOTOR_STALL" }, await ScalarAsync<string[]>(ConnectionString, "SELECT active_alarm_codes FROM pf_pump_status WHERE serial = 'SN0003'"));
        Assert.Equal(2L, await ScalarAsync<long>(ConnectionString, "SELECT count(*) FROM pf_anomalies WHERE status = 'open'"));
        Assert.Equal(12L, await ScalarAsync<long>(ConnectionString, "SELECT sum(pumps) FROM pf_cohort_stats"));
        // 72 h of dosing per pump: first event at 00:00, last dose at 72:00 (+ status events a few minutes later).
        Assert.InRange(await ScalarAsync<double>(ConnectionString, "SELECT sum(pump_days) FROM pf_cohort_stats"), 12 * 3.0, 12 * 3.01);
        Assert.Equal(5L, await ScalarAsync<long>(ConnectionString, "SELECT sum(alarms) FROM pf_cohort_stats"));
        Assert.NotNull(await ScalarAsync<DateTime?>(ConnectionString, "SELECT forecast_empty_at FROM pf_pump_status WHERE serial = 'SN0000'"));
        Assert.True(await ScalarAsync<bool>(ConnectionString, "SELECT next_refill_due_at < forecast_empty_at FROM pf_pump_status WHERE serial = 'SN0000'"));
    }

    [Fact]
    public async Task CohortSignalStream_IsNotProjectedAsAPump_ButItsAnomalyIsListed()
    {
        await Seed(2).AppendInWavesAsync(Store, 24, () => Task.CompletedTask, Ct);
        var signal = new Contracts.Events.AnomalyDetected
        {
            At = new DateTimeOffset(2026, 11, 2, 0, 0, 0, TimeSpan.Zero), AnomalyId = "cohort:SM2-40:4.2.1:L1:cohort-signal:1", Kind = "cohort-signal",
            Severity = "warning", Summary = "stall rate above the fleet", Evidence = new Dictionary<string, double> { ["rate"] = 3.2 },
        };
        await Store.AppendAsync("cohort:SM2-40:4.2.1:L1", 0,
            [new EventStore.EventToAppend(Guid.NewGuid(), "anomaly.detected", Contracts.Json.EventJson.Serialize(signal), null, null, signal.At)], Ct);
        await CatchUpAllAsync(Runner);

        Assert.Equal(0L, await ScalarAsync<long>(ConnectionString, "SELECT count(*) FROM pf_pump_status WHERE serial LIKE 'cohort:%'"));
        Assert.Equal(2L, await ScalarAsync<long>(ConnectionString, "SELECT sum(pumps) FROM pf_cohort_stats"));
        Assert.Equal(1L, await ScalarAsync<long>(ConnectionString, "SELECT count(*) FROM pf_anomalies WHERE kind = 'cohort-signal'"));
    }

    [Fact]
    public async Task PumpStatusRow_EqualsTheGrainsFold()
    {
        var seed = Seed(4);
        await seed.AppendInWavesAsync(Store, 24, () => CatchUpAllAsync(Runner), Ct);
        var state = new Domain.Pumps.PumpState { Serial = "SN0001" };
        await foreach (var e in Store.ReadStreamAsync("SN0001", 0, Ct))
        {
            state.Apply(Contracts.Json.EventJson.Deserialize(e.Type, e.Data), new Domain.Pumps.EventEnvelope(e.Version, e.Seq, e.ReceivedAt, e.ClockSuspect));
        }

        var view = state.ToView();
        Assert.Equal(view.Status, await ScalarAsync<string>(ConnectionString, "SELECT status FROM pf_pump_status WHERE serial = 'SN0001'"));
        Assert.Equal(view.ReservoirMl!.Value, await ScalarAsync<double>(ConnectionString, "SELECT reservoir_ml FROM pf_pump_status WHERE serial = 'SN0001'"), 9);
        Assert.Equal(view.ForecastEmptyAt!.Value.UtcDateTime, await ScalarAsync<DateTime>(ConnectionString, "SELECT forecast_empty_at FROM pf_pump_status WHERE serial = 'SN0001'"), TimeSpan.FromMilliseconds(1));
        Assert.Equal(view.LastSeq, await ScalarAsync<long>(ConnectionString, "SELECT last_seq FROM pf_pump_status WHERE serial = 'SN0001'"));
    }

    [Fact]
    public async Task Rebuild_FromZero_EqualsTheLiveReadModels()
    {
        var seed = Seed();
        // Live: the log grows in waves and the projections follow each wave.
        await seed.AppendInWavesAsync(Store, 10, () => CatchUpAllAsync(Runner), Ct);
        var live = await DumpAsync(ConnectionString);

        var rebuilder = Microsoft.Extensions.DependencyInjection.ServiceProviderServiceExtensions.GetRequiredService<ProjectionRebuilder>(Services);
        await rebuilder.RebuildAllAsync(Ct);
        Assert.Equal(0L, await ScalarAsync<long>(ConnectionString, "SELECT count(*) FROM pf_pump_status"));
        await CatchUpAllAsync(Runner);

        Assert.Equal(live, await DumpAsync(ConnectionString));
    }

    [Fact]
    public async Task CrashAfterWriteBeforeCommit_NeitherLosesNorDoubleCounts()
    {
        var seed = Seed();
        await seed.AppendInWavesAsync(Store, 72, () => Task.CompletedTask, Ct);
        var services = Build(ConnectionString, pageSize: 37);
        var runner = Microsoft.Extensions.DependencyInjection.ServiceProviderServiceExtensions.GetRequiredService<ProjectionRunner>(services);
        var pages = 0;
        runner.BeforeCommit = (_, _) => ++pages == 4 ? throw new InvalidOperationException("power cut between the read-model write and the commit") : Task.CompletedTask;

        // Tests in other databases hold the server-wide horizon back, so one catch-up may stop short of the fourth page
        // (it ends at the horizon, not at the newest event): call it again, as the grain's timer would, until the cut.
        var crashed = false;
        await Eventually.TrueAsync(async () =>
        {
            try
            {
                await runner.CatchUpAsync(PumpProjection.ProjectionName, 0, 1, TimeSpan.FromMinutes(5), Ct);
            }
            catch (InvalidOperationException)
            {
                crashed = true;
            }

            return crashed;
        }, TimeSpan.FromSeconds(60), "the fourth page to be cut off before its commit", TimeSpan.FromMilliseconds(20));
        var partial = await ScalarAsync<double>(ConnectionString, "SELECT coalesce(sum(delivered_ml), 0) FROM pf_daily_flow");
        Assert.InRange(partial, 0.0001, seed.TotalDeliveredMl() - 0.0001);

        // A new worker (the grain re-activated elsewhere) resumes from the committed checkpoint.
        runner.BeforeCommit = null;
        await CatchUpAllAsync(runner);
        Assert.Equal(seed.TotalDeliveredMl(), await ScalarAsync<double>(ConnectionString, "SELECT sum(delivered_ml) FROM pf_daily_flow"), 6);
        var afterCrash = await DumpAsync(ConnectionString);

        var reference = await Pg.CreateDatabaseAsync("ref", typeof(PumpProjection).Assembly);
        var refServices = Build(reference);
        await seed.AppendInWavesAsync(Microsoft.Extensions.DependencyInjection.ServiceProviderServiceExtensions.GetRequiredService<EventStore.IEventStore>(refServices), 72, () => Task.CompletedTask, Ct);
        await CatchUpAllAsync(Microsoft.Extensions.DependencyInjection.ServiceProviderServiceExtensions.GetRequiredService<ProjectionRunner>(refServices));
        Assert.Equal(await DumpAsync(reference), afterCrash);
    }

    [Fact]
    public async Task CancelBetweenPages_ResumesWithoutLossOrDuplicates()
    {
        var seed = Seed();
        await seed.AppendInWavesAsync(Store, 72, () => Task.CompletedTask, Ct);
        var services = Build(ConnectionString, pageSize: 50);
        var runner = Microsoft.Extensions.DependencyInjection.ServiceProviderServiceExtensions.GetRequiredService<ProjectionRunner>(services);
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(Ct);
        var pages = 0;
        runner.BeforeCommit = (_, _) =>
        {
            if (++pages == 3)
            {
                // The silo shuts down: the page in flight must roll back, not half-commit.
                cts.Cancel();
                cts.Token.ThrowIfCancellationRequested();
            }

            return Task.CompletedTask;
        };
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => runner.CatchUpAsync(CohortProjection.ProjectionName, 0, 1, TimeSpan.FromMinutes(5), cts.Token));
        runner.BeforeCommit = null;
        await CatchUpAllAsync(runner);

        Assert.Equal(5L, await ScalarAsync<long>(ConnectionString, "SELECT sum(alarms) FROM pf_cohort_stats"));
        Assert.Equal(12L, await ScalarAsync<long>(ConnectionString, "SELECT sum(pumps) FROM pf_cohort_stats"));
        Assert.Equal(2L, await ScalarAsync<long>(ConnectionString, "SELECT sum(anomalies) FROM pf_cohort_stats"));
    }

    [Fact]
    public async Task ReplayFromStart_WithoutEmptying_ChangesNothing()
    {
        var seed = Seed();
        await seed.AppendInWavesAsync(Store, 24, () => CatchUpAllAsync(Runner), Ct);
        var before = await DumpAsync(ConnectionString);

        // As if a checkpoint were lost: every event is offered again.
        await ExecAsync(ConnectionString, "UPDATE pf_checkpoints SET transaction_id = '0'::xid8, global_position = 0");
        await CatchUpAllAsync(Runner);

        Assert.Equal(before, await DumpAsync(ConnectionString));
    }

    [Fact]
    public async Task TwoWorkersOnOnePartition_ApplyEachEventOnce()
    {
        var seed = Seed();
        await seed.AppendInWavesAsync(Store, 72, () => Task.CompletedTask, Ct);
        // Two activations of the same projection grain (possible for a moment during a membership change).
        var a = Microsoft.Extensions.DependencyInjection.ServiceProviderServiceExtensions.GetRequiredService<ProjectionRunner>(Build(ConnectionString, pageSize: 40));
        var b = Microsoft.Extensions.DependencyInjection.ServiceProviderServiceExtensions.GetRequiredService<ProjectionRunner>(Build(ConnectionString, pageSize: 40));
        await Task.WhenAll(
            Task.Run(() => CatchUpAllAsync(a), Ct),
            Task.Run(() => CatchUpAllAsync(b), Ct));

        Assert.Equal(seed.TotalDeliveredMl(), await ScalarAsync<double>(ConnectionString, "SELECT sum(delivered_ml) FROM pf_daily_flow"), 6);
        Assert.Equal(5L, await ScalarAsync<long>(ConnectionString, "SELECT sum(alarms) FROM pf_cohort_stats"));
        Assert.Equal(12L, await ScalarAsync<long>(ConnectionString, "SELECT sum(refills) FROM pf_daily_flow"));
    }

    [Fact]
    public async Task Partitions_GiveTheSameReadModelsAsOne()
    {
        var seed = Seed();
        await seed.AppendInWavesAsync(Store, 72, () => Task.CompletedTask, Ct);
        await CatchUpAllAsync(Runner);
        var single = await DumpAsync(ConnectionString);

        var other = await Pg.CreateDatabaseAsync("part", typeof(PumpProjection).Assembly);
        var services = Build(other, partitions: 3);
        await seed.AppendInWavesAsync(Microsoft.Extensions.DependencyInjection.ServiceProviderServiceExtensions.GetRequiredService<EventStore.IEventStore>(services), 72, () => Task.CompletedTask, Ct);
        var runner = Microsoft.Extensions.DependencyInjection.ServiceProviderServiceExtensions.GetRequiredService<ProjectionRunner>(services);
        await CatchUpAllAsync(runner, partitions: 3);

        Assert.Equal(single, await DumpAsync(other));
        // Checkpoints are per log partition, whatever the number of workers: one per projection and non-empty partition.
        Assert.Equal(0L, await ScalarAsync<long>(other, "SELECT count(*) FROM pf_checkpoints WHERE name LIKE 'projection:%:%of3'"));
        Assert.Equal(runner.Names.Count * await ScalarAsync<long>(other, "SELECT count(DISTINCT log_partition) FROM pf_events"),
            await ScalarAsync<long>(other, "SELECT count(*) FROM pf_checkpoints WHERE name LIKE 'projection:%:%of16'"));
    }

    [Fact]
    public void PartitionOf_IsStableAndSpreads()
    {
        Assert.Equal(Partitioning.PartitionOf("SN0001", 4), Partitioning.PartitionOf("SN0001", 4));
        var counts = Enumerable.Range(0, 1000).Select(i => Partitioning.PartitionOf($"P{i}", 4)).GroupBy(x => x).ToDictionary(g => g.Key, g => g.Count());
        Assert.Equal(4, counts.Count);
        Assert.All(counts.Values, c => Assert.InRange(c, 180, 320));
        Assert.Equal(("pumps", 2, 3), Partitioning.ParseGrainKey(Partitioning.GrainKey("pumps", 2, 3)));
        Assert.Throws<FormatException>(() => Partitioning.ParseGrainKey("pumps/3/3"));
    }
}
