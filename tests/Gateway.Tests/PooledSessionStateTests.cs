using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
using Npgsql;
using PumpFleet.EventStore;
using PumpFleet.Gateway.Hosting;
using PumpFleet.Gateway.Hubs;
using PumpFleet.Gateway.Ingest;
using PumpFleet.TestSupport;

namespace PumpFleet.Gateway.Tests;

/// <summary>
/// The gateway's session state stays off the platform's pool, which hands connections on without Npgsql's reset
/// (EventStoreDataSource.Build): the hub registry watcher's LISTEN, through a lost connection and a stop, and the hub
/// import's temporary table, done or refused. Afterwards every connection of the (small) pool is borrowed at once and
/// PostgreSQL says what each session holds.
/// </summary>
public sealed class PooledSessionStateTests(PostgresFixture pg)
{
    private const int PoolSize = 3;

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    // Few iterations: the test checks sessions, not the hash's strength.
    private static readonly HubAuthOptions Auth = new() { Pbkdf2Iterations = 1000, BrokerHashIterations = 10 };

    [Fact]
    public async Task RegistryWatcher_ThatLostItsConnectionAndStopped_LeavesNoListenOnThePool()
    {
        var cs = await pg.CreateDatabaseAsync("gwsess", typeof(GatewayServiceCollectionExtensions).Assembly);
        await using var services = Services(cs);
        var watcher = services.GetRequiredService<HubRegistryWatcher>();
        await watcher.StartAsync(Ct);
        await watcher.WaitReadyAsync(Ct);
        const string Listen = $"LISTEN {HubRegistryWatcher.Channel}";
        var first = await PooledSessions.IdleAfterAsync(cs, Listen, null, Ct);

        await PooledSessions.TerminateAsync(cs, first, Ct);
        await PooledSessions.IdleAfterAsync(cs, Listen, first, Ct);
        // The new session hears a revocation (well before the 30-s re-check); its re-read borrows from the pool.
        var store = services.GetRequiredService<HubStore>();
        var hub = $"SS{Guid.NewGuid():N}"[..20];
        Assert.True(await store.TryCreateAsync(hub, HubCredential.From("a-secret-of-20-chars", Auth), "test", Ct));
        Assert.True(await store.RevokeAsync(hub, "test", Ct));
        await Eventually.TrueAsync(() => Task.FromResult(watcher.IsRevoked(hub)), TimeSpan.FromSeconds(10), "the revocation heard");
        await watcher.StopAsync(Ct);

        var sessions = await PooledSessions.EveryAsync(services.GetRequiredService<NpgsqlDataSource>(), PoolSize, Ct);
        Assert.All(sessions, s => Assert.Empty(s.Channels));
    }

    [Fact]
    public async Task HubImport_LeavesNoTemporaryTableOnThePool_DoneOrRefused()
    {
        var cs = await pg.CreateDatabaseAsync("gwsess", typeof(GatewayServiceCollectionExtensions).Assembly);
        await using var services = Services(cs);
        var ds = services.GetRequiredService<NpgsqlDataSource>();
        var import = new HubImport(ds, Auth);
        var run = Guid.NewGuid().ToString("N")[..8];

        Assert.True((await import.ImportAsync(new StringReader($"hub_id\nSI{run}-1\n"), "cli:tester@host", Ct)).Done);
        Assert.All(await PooledSessions.EveryAsync(ds, PoolSize, Ct), s => Assert.Equal(0L, s.TemporaryTables));
        // Refused: the hub exists (the check's rollback).
        Assert.False((await import.ImportAsync(new StringReader($"hub_id\nSI{run}-2\nSI{run}-1\n"), "cli:tester@host", Ct)).Done);
        Assert.All(await PooledSessions.EveryAsync(ds, PoolSize, Ct), s => Assert.Equal(0L, s.TemporaryTables));
        // The next import on the same pool stages its rows again (a table left behind would refuse the CREATE).
        Assert.True((await import.ImportAsync(new StringReader($"hub_id\nSI{run}-2\n"), "cli:tester@host", Ct)).Done);
    }

    // The watcher as AddPumpFleetGateway registers it, on the platform's data sources with a pool of PoolSize.
    private static ServiceProvider Services(string cs)
    {
        var services = new ServiceCollection().AddLogging().AddMetrics();
        services.AddSingleton<IConfiguration>(new ConfigurationBuilder().Build());
        services.AddPumpFleetEventStore(new NpgsqlConnectionStringBuilder(cs) { MaxPoolSize = PoolSize }.ConnectionString);
        services.AddSingleton(TimeProvider.System);
        services.AddSingleton(Options.Create(Auth));
        services.AddSingleton<GatewayInstruments>();
        services.AddSingleton<HubStore>();
        services.AddSingleton<HubRegistryWatcher>();
        return services.BuildServiceProvider();
    }
}
