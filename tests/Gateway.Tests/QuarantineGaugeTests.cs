using Microsoft.Extensions.Logging.Abstractions;
using Npgsql;
using PumpFleet.Gateway.Quarantine;
using PumpFleet.TestSupport;

namespace PumpFleet.Gateway.Tests;

/// <summary>
/// The quarantine gauge asks the quarantine's owner (moved here from the projections' fleet gauges, which counted the
/// gateway's table with their own SQL).
/// </summary>
public sealed class QuarantineGaugeTests(PostgresFixture pg)
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task Gauge_CountsQuarantinedItems_AndIsZeroBeforeTheTableExists()
    {
        using var meters = new TestMeterFactory();
        var empty = await pg.CreateDatabaseAsync("qg0");
        await using (var ds = NpgsqlDataSource.Create(empty))
        {
            var before = new QuarantineGauge(meters, new QuarantineStore(ds), TimeProvider.System, NullLogger<QuarantineGauge>.Instance);
            Assert.Equal(0, await before.RefreshAsync(Ct));
        }

        var cs = await pg.CreateDatabaseAsync("qg", typeof(Hosting.GatewayServiceCollectionExtensions).Assembly);
        await using var dataSource = NpgsqlDataSource.Create(cs);
        var store = new QuarantineStore(dataSource);
        var gauge = new QuarantineGauge(meters, store, TimeProvider.System, NullLogger<QuarantineGauge>.Instance);
        Assert.Equal(0, await gauge.RefreshAsync(Ct));
        var item = new QuarantineItem("hub-q", "PF-Q-1", "pumpfleet/v1/hubs/hub-q/batch", true, false, null, Protocol.RejectCodes.InvalidJson, "test",
            DateTimeOffset.UtcNow, "{"u8.ToArray());
        await store.AddAsync([item, item with { Seq = 7, WholeMessage = false }], Ct);
        Assert.Equal(2, await gauge.RefreshAsync(Ct));
        Assert.Equal(2, gauge.Size);
    }
}
