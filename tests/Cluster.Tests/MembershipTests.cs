using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Npgsql;
using Orleans.Runtime;
using PumpFleet.Contracts.Events;
using PumpFleet.Contracts.Grains;
using PumpFleet.Clustering;
using PumpFleet.TestSupport;

namespace PumpFleet.Cluster.Tests;

/// <summary>
/// Orleans' ADO.NET providers against PumpFleet's own schema and query texts (migrations 030/031): two silos in this
/// process, composed by the real UsePumpFleetClustering, and a client that finds them through PostgreSQL.
/// </summary>
public sealed class MembershipTests(PostgresFixture pg)
{
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(60);

    [Fact]
    public async Task TwoSilos_JoinThroughPostgres_SeeEachOther_RouteCalls_AndLeaveCleanly()
    {
        var ct = TestContext.Current.CancellationToken;
        var cs = await pg.CreateDatabaseAsync("members", typeof(ClusterHostingExtensions).Assembly);
        var clusterId = "members-" + Guid.NewGuid().ToString("N")[..8];
        var a = await InProcessSilo.StartSiloAsync(cs, clusterId, Ports.Free(), Ports.Free());
        var b = await InProcessSilo.StartSiloAsync(cs, clusterId, Ports.Free(), Ports.Free());
        try
        {
            await Eventually.TrueAsync(async () => await CountAsync(cs, clusterId, "status = 3") == 2, Deadline, "two Active rows");
            Assert.Equal(2, await CountAsync(cs, clusterId, "proxy_port > 0 AND address = '127.0.0.1'"));

            using var client = await InProcessSilo.StartClientAsync(cs, clusterId);
            var grains = client.Services.GetRequiredService<IGrainFactory>();
            var management = grains.GetGrain<IManagementGrain>(0);
            await Eventually.TrueAsync(async () => (await management.GetHosts(onlyActive: true)).Count == 2, Deadline, "the cluster sees two silos");

            // Pumps placed by the cluster land on both silos; calls from one client reach grains on either.
            var serials = Enumerable.Range(1, 16).Select(i => $"MB{clusterId[8..]}{i:D2}").ToArray();
            foreach (var serial in serials)
            {
                var g = grains.GetGrain<IPumpIngestGrain>(serial);
                await g.PairAsync("H1", "test");
                var at = DateTimeOffset.UtcNow.AddDays(-1);
                var r = await g.IngestAsync(new IngestBatch
                {
                    HubId = "H1", ReceivedAt = DateTimeOffset.UtcNow,
                    Device = new DeviceInfo { Model = "SM2-20", Firmware = "4.2.1", Lot = "L1", ReservoirCapacityMl = 20 },
                    Events = [new DoseDelivered { Seq = 1, At = at, From = at.AddMinutes(-1), VolumeMl = 0.01, Kind = "basal" }],
                });
                Assert.Equal(1, r.CommittedSeq);
            }

            // A grain call: its timeout is the client's response timeout, not the test's token.
#pragma warning disable xUnit1051
            var stats = await management.GetDetailedGrainStatistics();
#pragma warning restore xUnit1051
            var silosWithPumps = stats.Where(s => serials.Contains(s.GrainId.Key.ToString())).Select(s => s.SiloAddress).Distinct().Count();
            Assert.Equal(2, silosWithPumps);

            // Graceful leave: the row turns Dead (6); the cleanup query then removes it once past the cut-off.
            await b.StopAsync(ct);
            await Eventually.TrueAsync(async () => await CountAsync(cs, clusterId, "status = 6") == 1, Deadline, "the stopped silo's row is Dead");
            var table = a.Services.GetRequiredService<IMembershipTable>();
            await table.CleanupDefunctSiloEntriesAsync(DateTimeOffset.UtcNow.AddMinutes(1), ct);
            Assert.Equal(0, await CountAsync(cs, clusterId, "status = 6"));
            Assert.Equal(1, await CountAsync(cs, clusterId, "status = 3"));
            var all = await table.ReadAllAsync(ct);
            Assert.Single(all.Members);
        }
        finally
        {
            await b.StopAsync(CancellationToken.None);
            await a.StopAsync(CancellationToken.None);
            b.Dispose();
            a.Dispose();
        }
    }

    [Fact]
    public async Task Reminders_RoundTripThroughPostgres_WithEtags_AndRingRanges()
    {
        var ct = TestContext.Current.CancellationToken;
        var cs = await pg.CreateDatabaseAsync("reminders", typeof(ClusterHostingExtensions).Assembly);
        var clusterId = "rem-" + Guid.NewGuid().ToString("N")[..8];
        using var silo = await InProcessSilo.StartSiloAsync(cs, clusterId, Ports.Free(), Ports.Free());
        try
        {
            var table = silo.Services.GetRequiredService<IReminderTable>();
            var grain = GrainId.Create("pump", "RM-" + clusterId);
            var start = new DateTime(2026, 11, 1, 12, 0, 0, DateTimeKind.Utc);
            var etag1 = await table.UpsertRow(new ReminderEntry { GrainId = grain, ReminderName = "silent-check", StartAt = start, Period = TimeSpan.FromMinutes(5) }, ct);
            var etag2 = await table.UpsertRow(new ReminderEntry { GrainId = grain, ReminderName = "silent-check", StartAt = start, Period = TimeSpan.FromMinutes(10) }, ct);
            Assert.NotEqual(etag1, etag2);
            // A period beyond int milliseconds goes through the provider's long path.
            await table.UpsertRow(new ReminderEntry { GrainId = grain, ReminderName = "yearly", StartAt = start, Period = TimeSpan.FromDays(365) }, ct);

            var row = await table.ReadRow(grain, "silent-check", ct);
            Assert.NotNull(row);
            Assert.Equal((TimeSpan.FromMinutes(10), start, etag2), (row.Period, row.StartAt.ToUniversalTime(), row.ETag));
            Assert.Equal(2, (await table.ReadRows(grain, ct)).Reminders.Count);

            // The whole ring in two halves (non-wrapping and wrapping query) finds both reminders exactly once.
            var hash = grain.GetUniformHashCode();
            var inRange = (await table.ReadRows(hash - 1, hash, ct)).Reminders.Count;
            var wrapped = (await table.ReadRows(hash, hash - 1, ct)).Reminders.Count;
            Assert.Equal((2, 0), (inRange, wrapped));

            Assert.False(await table.RemoveRow(grain, "silent-check", etag1!, ct));
            Assert.True(await table.RemoveRow(grain, "silent-check", etag2!, ct));
            Assert.Single((await table.ReadRows(grain, ct)).Reminders);
        }
        finally
        {
            await silo.StopAsync(ct);
        }
    }

    private static async Task<long> CountAsync(string cs, string clusterId, string where)
    {
        await using var ds = NpgsqlDataSource.Create(cs);
        await using var cmd = ds.CreateCommand($"SELECT count(*) FROM pf_orleans_membership WHERE deployment_id = $1 AND {where}");
        cmd.Parameters.Add(new() { Value = clusterId });
        return (long)(await cmd.ExecuteScalarAsync())!;
    }
}
