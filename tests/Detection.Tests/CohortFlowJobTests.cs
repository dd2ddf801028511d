using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using Microsoft.Extensions.Time.Testing;
using Npgsql;
using PumpFleet.Contracts.Events;
using PumpFleet.Contracts.Grains;
using PumpFleet.Domain.Detection;
using PumpFleet.EventStore;
using PumpFleet.ReadModels;
using PumpFleet.TestSupport;

namespace PumpFleet.Detection.Tests;

/// <summary>
/// <c>CohortFlowJob</c> on a real PostgreSQL and an in-process silo: the pumps' refill flow samples in the read model
/// open one <c>cohort-flow-deviation</c> on the cohort's stream and the lot's pumps are told its factor, a second run
/// adds nothing, and once the samples are normal again it resolves and the pumps drop the factor.
/// </summary>
public sealed class CohortFlowJobTests(PostgresFixture pg)
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;
    private static readonly DateTimeOffset Now = new(2026, 6, 1, 0, 0, 0, TimeSpan.Zero);

    // No log stream in this cluster: the job reads its samples from pf_pump_status, as with Streaming:Enabled=false.
    private static readonly IConfiguration NoStream = new ConfigurationBuilder()
        .AddInMemoryCollection(new Dictionary<string, string?> { ["Streaming:Enabled"] = "false" }).Build();

    private static async Task ExecAsync(NpgsqlDataSource ds, string sql)
    {
        await using var cmd = ds.CreateCommand(sql);
        await cmd.ExecuteNonQueryAsync(Ct);
    }

    [Fact]
    public async Task Job_OpensOneWarningOnTheLotsStream_AndResolvesItWhenRefillsAreNormalAgain()
    {
        var cs = await pg.CreateDatabaseAsync("cflow");
        await using var ds = NpgsqlDataSource.Create(cs);

        // The columns the job reads, as the read models' migrations 020 and 025 make them.
        await ExecAsync(ds, """
            CREATE TABLE pf_pump_status (serial text PRIMARY KEY, model text, firmware text, lot text, refill_flow_factor double precision,
                refill_flow_at timestamptz, refill_flow_cycle_ml double precision, status text NOT NULL DEFAULT 'ok',
                flow_anomaly_id text, flow_factor double precision);
            CREATE TABLE pf_anomalies (id text PRIMARY KEY, serial text, kind text, status text, detected_at timestamptz, evidence jsonb);
            INSERT INTO pf_pump_status
            SELECT 'SN' || i, 'SM2-20', CASE WHEN i % 2 = 0 THEN '4.1.0' ELSE '4.2.1' END,
                   CASE WHEN i < 12 THEN 'L9' WHEN i < 27 THEN 'L1' ELSE 'L2' END,
                   CASE WHEN i < 12 THEN 1.2 ELSE 1.0 + (i % 5) * 0.005 END, '2026-05-20T00:00:00Z', 10
              FROM generate_series(0, 41) AS i;
            -- An old sample outside the 180-day window never counts.
            INSERT INTO pf_pump_status VALUES ('OLD', 'SM2-20', '4.1.0', 'L1', 3.0, '2025-01-01T00:00:00Z', 10);
            -- A pump of lot L9 with no sample yet (no complete refill cycle): the one the correction matters most for.
            INSERT INTO pf_pump_status (serial, model, firmware, lot) VALUES ('NEW', 'SM2-20', '4.2.1', 'L9');
            """);

        var time = new FakeTimeProvider(Now);
        await using var cluster = await PumpCluster.StartAsync(cs);
        var job = new CohortFlowJob(ds, cluster.Grains, Options.Create(new AnomalyDetectionOptions()), time, NoStream, NullLogger<CohortFlowJob>.Instance);

        // Real streams for a few of the pumps (the grain tells nothing to a serial it never heard from).
        string[] lotPumps = ["SN0", "SN5", "NEW"];
        foreach (var serial in lotPumps.Append("SN20"))
        {
            await cluster.Grains.GetGrain<IPumpIngestGrain>(serial).PairAsync("H-1", "test");
            await cluster.Grains.GetGrain<IPumpIngestGrain>(serial).IngestAsync(new IngestBatch
            {
                HubId = "H-1", ReceivedAt = Now, Device = new DeviceInfo { Model = "SM2-20", Firmware = "4.2.1", Lot = serial == "SN20" ? "L1" : "L9", ReservoirCapacityMl = 20 },
                Events = [new TherapyPhaseChanged { Seq = 1, At = Now.AddDays(-1), Phase = "implanted" }],
            });
        }

        var opened = Assert.IsType<AnomalyDetected>(Assert.Single(await job.RunOnceAsync(Ct)));
        Assert.Equal(AnomalyKinds.CohortFlowDeviation, opened.Kind);
        Assert.StartsWith("cohort-flow:lot:L9:", opened.AnomalyId, StringComparison.Ordinal);
        Assert.Equal(1.2, opened.Evidence["factor"], 6);
        Assert.Equal(12, opened.Evidence["pumps"]);
        Assert.Equal(1, opened.Evidence["direction"]);
        Assert.Contains("lot L9", opened.Summary, StringComparison.Ordinal);

        // The same run told the lot's pumps, those without a refill sample too; other lots' pumps hold nothing.
        foreach (var serial in lotPumps)
        {
            var held = (await cluster.Grains.GetGrain<IPumpQueryGrain>(serial).GetStateAsync()).FlowCorrection;
            Assert.Equal(opened.AnomalyId, held?.AnomalyId);
            Assert.Equal(1.2, held!.Factor, 6);
            Assert.Equal("lot L9", held.Cohort);
        }

        Assert.Null((await cluster.Grains.GetGrain<IPumpQueryGrain>("SN20").GetStateAsync()).FlowCorrection);

        // Still signalling, and the read models (as the projections write them) show it open and held: nothing more.
        await ExecAsync(ds, $"""
            INSERT INTO pf_anomalies VALUES ('{opened.AnomalyId}', 'cohort-flow:lot:L9', 'cohort-flow-deviation', 'open', '{Now:O}', '{"{"}"factor": 1.2{"}"}');
            UPDATE pf_pump_status SET flow_anomaly_id = '{opened.AnomalyId}', flow_factor = 1.2 WHERE lot = 'L9';
            """);
        Assert.Empty(await job.RunOnceAsync(Ct));
        Assert.Equal(0, await job.TellPumpsAsync(Ct));

        // Later refills of the lot are normal.
        await ExecAsync(ds, "UPDATE pf_pump_status SET refill_flow_factor = 1.0, refill_flow_at = '2026-05-30T00:00:00Z' WHERE lot = 'L9'");
        var resolved = Assert.IsType<AnomalyResolved>(Assert.Single(await job.RunOnceAsync(Ct)));
        Assert.Equal(opened.AnomalyId, resolved.AnomalyId);
        Assert.True(resolved.Automatic);

        // Resolved: every pump that held it is told to drop it.
        foreach (var serial in lotPumps)
        {
            Assert.Null((await cluster.Grains.GetGrain<IPumpQueryGrain>(serial).GetStateAsync()).FlowCorrection);
        }

        var types = new List<string>();
        await foreach (var e in new NpgsqlEventStore(ds).ReadStreamAsync("cohort-flow:lot:L9", 0, Ct))
        {
            types.Add(e.Type);
        }

        Assert.Equal(["anomaly.detected", "anomaly.resolved"], types);
    }

    [Fact]
    public async Task CohortGrain_RefusesAFlowFindingOnAnotherKindOfStream()
    {
        var cs = await pg.CreateDatabaseAsync("cflow");
        await using var cluster = await PumpCluster.StartAsync(cs);
        var finding = new CohortSignalFinding { Summary = "x", Evidence = new Dictionary<string, double> { ["factor"] = 1.2 } };
        await Assert.ThrowsAsync<ArgumentException>(() =>
            cluster.Grains.GetGrain<ICohortSignalGrain>("cohort:SM2-20:4.1.0:L1").SetFindingAsync(AnomalyKinds.CohortFlowDeviation, finding));
        await Assert.ThrowsAsync<ArgumentException>(() =>
            cluster.Grains.GetGrain<ICohortSignalGrain>("cohort-flow:lot:L1").SetFindingAsync(AnomalyKinds.FlowStall, finding));
    }

    [Fact]
    public async Task Job_WithoutTheColumns_DoesNothing()
    {
        var cs = await pg.CreateDatabaseAsync("cflow");
        await using var ds = NpgsqlDataSource.Create(cs);
        await ExecAsync(ds, "CREATE TABLE pf_pump_status (serial text PRIMARY KEY)");
        await using var cluster = await PumpCluster.StartAsync(cs);
        var job = new CohortFlowJob(ds, cluster.Grains, Options.Create(new AnomalyDetectionOptions()), TimeProvider.System, NoStream, NullLogger<CohortFlowJob>.Instance);
        Assert.Empty(await job.RunOnceAsync(Ct));
    }
}
