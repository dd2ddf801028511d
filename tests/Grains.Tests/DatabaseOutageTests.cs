using Npgsql;
using PumpFleet.Contracts.Events;
using PumpFleet.Contracts.Grains;
using PumpFleet.EventStore.Local;
using PumpFleet.TestSupport;
using static PumpFleet.Grains.Tests.Ev;

namespace PumpFleet.Grains.Tests;

/// <summary>Uses a private server of its own, because it stops the database.</summary>
public sealed class DatabaseOutageTests : IAsyncLifetime
{
    private PrivatePostgres _pg = null!;
    private PumpCluster _cluster = null!;

    public async ValueTask InitializeAsync()
    {
        _pg = await PrivatePostgres.StartAsync(durable: false);
        await using (var conn = new NpgsqlConnection(_pg.ConnectionString()))
        {
            await conn.OpenAsync();
            await using var cmd = new NpgsqlCommand("CREATE DATABASE outage", conn);
            await cmd.ExecuteNonQueryAsync();
        }

        var cs = _pg.ConnectionString("outage") + ";Timeout=3;Command Timeout=5";
        await using (var ds = NpgsqlDataSource.Create(cs))
        {
            await new EventStore.SchemaMigrator(ds, [], Microsoft.Extensions.Logging.Abstractions.NullLogger<EventStore.SchemaMigrator>.Instance).MigrateAsync();
        }

        _cluster = await PumpCluster.StartAsync(cs);
    }

    public async ValueTask DisposeAsync()
    {
        await _cluster.DisposeAsync();
        await _pg.DisposeAsync();
    }

    [Fact]
    public async Task Ingest_WhileDatabaseDown_FailsAndStoresNothing_ThenWorksWhenItReturns()
    {
        var g = _cluster.Grains.GetGrain<IPumpIngestGrain>("OUTAGE-1");
        await g.PairAsync("H1", "test");
        await g.IngestAsync(new IngestBatch { HubId = "H1", ReceivedAt = T0, Device = Device20, Events = [Continuous(1, T0, 0.5), Refill(2, T0, 18)] });
        var batch = new IngestBatch { HubId = "H1", ReceivedAt = T0.AddDays(1), Events = [Dose(3, T0, T0.AddHours(1), 0.02), Dose(4, T0.AddHours(1), T0.AddHours(2), 0.02)] };

        await _pg.StopAsync();
        await Assert.ThrowsAnyAsync<Exception>(() => g.IngestAsync(batch));
        await _pg.RestartAsync();

        // The failed call dropped the activation; the resend (what the gateway's hub does) is stored exactly once.
        IngestResult? result = null;
        await Eventually.TrueAsync(async () =>
        {
            result = await g.IngestAsync(batch);
            return true;
        }, TimeSpan.FromSeconds(30), "ingest to succeed after the database returned", TimeSpan.FromMilliseconds(200));

        Assert.Equal(4, result!.CommittedSeq);
        await using var ds = NpgsqlDataSource.Create(_cluster.ConnectionString);
        await using var cmd = ds.CreateCommand("SELECT count(*), count(DISTINCT seq) FROM pf_events WHERE stream_id = 'OUTAGE-1' AND seq IS NOT NULL");
        await using var r = await cmd.ExecuteReaderAsync(TestContext.Current.CancellationToken);
        await r.ReadAsync(TestContext.Current.CancellationToken);
        Assert.Equal((4L, 4L), (r.GetInt64(0), r.GetInt64(1)));
    }
}
