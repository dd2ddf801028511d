using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using Microsoft.Extensions.Time.Testing;
using Npgsql;
using PumpFleet.Contracts.Events;
using PumpFleet.Contracts.Grains;
using PumpFleet.Contracts.Json;
using PumpFleet.Domain.Detection;
using PumpFleet.Domain.Statistics;
using PumpFleet.EventStore;
using PumpFleet.Grains.Detection.Fleet;
using PumpFleet.ReadModels;
using PumpFleet.TestSupport;

namespace PumpFleet.Detection.Tests;

public sealed class CohortSignalTests(PostgresFixture pg)
{
    // These tests seed pf_cohort_stats, the job's source when the log stream is off; the stream-fed tally is tested in
    // tests/Streaming.Tests/CohortTallyTests.cs.
    private static readonly IConfiguration TableSource =
        new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?> { ["Streaming:Enabled"] = "false" }).Build();

    [Theory]
    [InlineData(3, 0.5, 0.014387677)]     // 1 − e^−0.5 (1 + 0.5 + 0.125)
    [InlineData(1, 2.0, 0.864664717)]     // 1 − e^−2
    [InlineData(10, 10.0, 0.542070285)]
    [InlineData(40, 20.0, 0.0000532020)]
    public void UpperTail_MatchesTheExactPoissonSum(long k, double mu, double expected) =>
        Assert.Equal(expected, PoissonTest.UpperTail(k, mu), 6);

    [Theory]
    [InlineData(1, 0.05129)]    // Garwood one-sided 95 %: χ²(0.05; 2)/2
    [InlineData(3, 0.81769)]
    [InlineData(10, 5.42540)]
    public void LowerBound_IsTheGarwoodBound(long k, double expected) =>
        Assert.Equal(expected, PoissonTest.LowerBound(k, 0.05), 4);

    [Fact]
    public void Evaluate_FlagsOnlyACohortSignificantlyAboveTheRest_WithTheMinimumCount()
    {
        var o = new AnomalyDetectionOptions();
        CohortStats[] cohorts =
        [
            new("SM2-20", "4.1.0", "L1", 100, 10_000, 10, 12, 5),   // 12 critical alarms: 1.2 per 1000 pump-days
            new("SM2-20", "4.2.1", "L1", 100, 10_000, 10, 1, 5),
            new("SM2-40", "4.2.1", "L2", 100, 10_000, 11, 1, 6),
            new("PM2-20", "2.0.3", "P1", 5, 100, 2, 2, 0),           // 2 in 100 pump-days: high rate but below N ≥ 3
        ];

        var result = CohortSignals.Evaluate(cohorts, o);

        var hit = Assert.Single(result, r => r.Value is not null);
        Assert.Equal("4.1.0", hit.Key.Firmware);
        Assert.Equal("critical alarms", hit.Value!.Measure);
        Assert.True(hit.Value.LowerBoundPer1000 > hit.Value.RestRatePer1000);
        Assert.Null(result[cohorts[3]]);
    }

    [Fact]
    public void Evaluate_ControlsTheFalseDiscoveryRate_AcrossCohorts()
    {
        // 30 ordinary cohorts at 5 alarms per 1000 pump-days and one with 10: alone, p = P(X ≥ 10 | ≈5) ≈ 0.03 < 0.05
        // would signal; among 31 tests its Benjamini–Hochberg q is ≈ 0.98, so it does not.
        var o = new AnomalyDetectionOptions();
        var cohorts = Enumerable.Range(0, 30).Select(i => new CohortStats("SM2-20", "4.2.1", $"L{i}", 10, 1000, 5, 0, 0)).ToList();
        cohorts.Add(new CohortStats("SM2-20", "4.3.0", "LX", 10, 1000, 10, 0, 0));
        var expected = 150.0 / 30_000 * 1000;
        Assert.InRange(PoissonTest.UpperTail(10, expected), 0.01, 0.05);

        var result = CohortSignals.Evaluate(cohorts, o);
        Assert.All(result.Values, v => Assert.Null(v));

        // A strong cohort still signals, and says how it was corrected.
        cohorts[^1] = cohorts[^1] with { Alarms = 25 };
        var hit = Assert.Single(CohortSignals.Evaluate(cohorts, o), r => r.Value is not null).Value!;
        Assert.Equal(31, hit.Tests);
        Assert.True(hit.QValue < o.CohortAlpha && hit.QValue >= hit.PValue);
        Assert.Contains("Benjamini–Hochberg", hit.Summary, StringComparison.Ordinal);
        Assert.Equal(1, hit.Evidence["falseDiscoveryControl"]);
    }

    [Fact]
    public async Task Job_OpensOneSignalPerCohortStream_AndResolvesItWhenTheCohortNormalises()
    {
        var cs = await pg.CreateDatabaseAsync("coh");
        await using var ds = NpgsqlDataSource.Create(cs);
        await using (var cmd = ds.CreateCommand("""
            CREATE TABLE pf_cohort_stats (model text, firmware text, lot text, pumps bigint, pump_days double precision,
                alarms bigint, critical_alarms bigint, anomalies bigint);
            INSERT INTO pf_cohort_stats VALUES
                ('SM2-20','4.1.0','L1',100,10000,10,12,5), ('SM2-20','4.2.1','L1',100,10000,10,1,5), ('SM2-40','4.2.1','L2',100,10000,11,1,6);
            """))
        {
            await cmd.ExecuteNonQueryAsync(TestContext.Current.CancellationToken);
        }

        var store = new NpgsqlEventStore(ds);
        var time = new FakeTimeProvider(new DateTimeOffset(2026, 6, 1, 0, 0, 0, TimeSpan.Zero));
        await using var cluster = await PumpCluster.StartAsync(cs);
        var job = new CohortSignalJob(ds, cluster.Grains, Options.Create(new AnomalyDetectionOptions()), time, TableSource, NullLogger<CohortSignalJob>.Instance);

        var first = await job.RunOnceAsync(TestContext.Current.CancellationToken);
        var opened = Assert.IsType<AnomalyDetected>(Assert.Single(first));
        Assert.Equal(AnomalyKinds.CohortSignal, opened.Kind);
        Assert.Equal(12, opened.Evidence["count"]);
        Assert.Empty(await job.RunOnceAsync(TestContext.Current.CancellationToken));   // still open: no duplicate

        await using (var cmd = ds.CreateCommand("UPDATE pf_cohort_stats SET critical_alarms = 1 WHERE firmware = '4.1.0'"))
        {
            await cmd.ExecuteNonQueryAsync(TestContext.Current.CancellationToken);
        }

        var resolved = Assert.IsType<AnomalyResolved>(Assert.Single(await job.RunOnceAsync(TestContext.Current.CancellationToken)));
        Assert.Equal(opened.AnomalyId, resolved.AnomalyId);
        Assert.True(resolved.Automatic);

        var stream = new List<string>();
        await foreach (var e in store.ReadStreamAsync("cohort:SM2-20:4.1.0:L1", 0, TestContext.Current.CancellationToken))
        {
            stream.Add(EventTypes.NameOf(EventJson.Deserialize(e.Type, e.Data)));
        }

        Assert.Equal(2, stream.Count);
    }

    [Fact]
    public async Task Job_WithoutTheReadModel_DoesNothing()
    {
        var cs = await pg.CreateDatabaseAsync("coh");
        await using var ds = NpgsqlDataSource.Create(cs);
        await using var cluster = await PumpCluster.StartAsync(cs);
        var job = new CohortSignalJob(ds, cluster.Grains, Options.Create(new AnomalyDetectionOptions()), TimeProvider.System, TableSource, NullLogger<CohortSignalJob>.Instance);
        Assert.Empty(await job.RunOnceAsync(TestContext.Current.CancellationToken));
    }

    [Fact]
    public async Task CohortStream_HasOneWriter_SoAnAcknowledgementOnAnActiveGrainNeverConflictsWithTheJob()
    {
        var cs = await pg.CreateDatabaseAsync("coh");
        await using var ds = NpgsqlDataSource.Create(cs);
        await using (var cmd = ds.CreateCommand("""
            CREATE TABLE pf_cohort_stats (model text, firmware text, lot text, pumps bigint, pump_days double precision,
                alarms bigint, critical_alarms bigint, anomalies bigint);
            INSERT INTO pf_cohort_stats VALUES
                ('SM2-20','4.1.0','L1',100,10000,10,12,5), ('SM2-20','4.2.1','L1',100,10000,10,1,5), ('SM2-40','4.2.1','L2',100,10000,11,1,6);
            """))
        {
            await cmd.ExecuteNonQueryAsync(TestContext.Current.CancellationToken);
        }

        await using var cluster = await PumpCluster.StartAsync(cs);
        const string stream = "cohort:SM2-20:4.1.0:L1";

        // The dashboard looked at the cohort first: its grain is active before the job writes.
        Assert.Empty((await cluster.Grains.GetGrain<IPumpQueryGrain>(stream).GetStateAsync()).OpenAnomalies);
        var job = new CohortSignalJob(ds, cluster.Grains, Options.Create(new AnomalyDetectionOptions()), TimeProvider.System, TableSource, NullLogger<CohortSignalJob>.Instance);
        var opened = Assert.IsType<AnomalyDetected>(Assert.Single(await job.RunOnceAsync(TestContext.Current.CancellationToken)));

        Assert.True(await cluster.Grains.GetGrain<IPumpAnomalyGrain>(stream).AcknowledgeAnomalyAsync(opened.AnomalyId, "dr.x", "looking"));
        Assert.Empty(await job.RunOnceAsync(TestContext.Current.CancellationToken));

        await using (var cmd = ds.CreateCommand("UPDATE pf_cohort_stats SET critical_alarms = 1 WHERE firmware = '4.1.0'"))
        {
            await cmd.ExecuteNonQueryAsync(TestContext.Current.CancellationToken);
        }

        Assert.IsType<AnomalyResolved>(Assert.Single(await job.RunOnceAsync(TestContext.Current.CancellationToken)));
        var types = new List<string>();
        await foreach (var e in new NpgsqlEventStore(ds).ReadStreamAsync(stream, 0, TestContext.Current.CancellationToken))
        {
            types.Add(e.Type);
        }

        Assert.Equal(["anomaly.detected", "anomaly.acknowledged", "anomaly.resolved"], types);
    }
}
