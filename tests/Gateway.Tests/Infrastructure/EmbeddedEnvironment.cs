using Microsoft.Extensions.DependencyInjection;
using PumpFleet.EventStore;
using PumpFleet.TestSupport;

namespace PumpFleet.Gateway.Tests.Infrastructure;

/// <summary>One database, one cluster with the real PumpGrain and one embedded-mode gateway, shared by a test class.</summary>
public sealed class EmbeddedEnvironment : IAsyncDisposable
{
    private readonly SemaphoreSlim _gate = new(1, 1);
    private PumpCluster? _cluster;

    public GatewayUnderTest Gateway { get; private set; } = null!;

    public PumpCluster Cluster => _cluster!;

    public string ConnectionString { get; private set; } = "";

    public async Task<EmbeddedEnvironment> EnsureStartedAsync(PostgresFixture pg, IDictionary<string, string?>? settings = null)
    {
        await _gate.WaitAsync(TestContext.Current.CancellationToken);
        try
        {
            if (_cluster is null)
            {
                ConnectionString = await pg.CreateDatabaseAsync("gw", typeof(Hosting.GatewayServiceCollectionExtensions).Assembly);
                _cluster = await PumpCluster.StartAsync(ConnectionString);
                Gateway = await GatewayUnderTest.StartAsync(ConnectionString, _cluster.Grains, settings: settings);
            }

            return this;
        }
        finally
        {
            _gate.Release();
        }
    }

    /// <summary>The device events stored for a pump, as (seq, clockSuspect), in stream order.</summary>
    public static async Task<List<StoredEvent>> DeviceEventsAsync(IServiceProvider services, string serial)
    {
        var store = services.GetRequiredService<IEventStore>();
        var list = new List<StoredEvent>();
        await foreach (var e in store.ReadStreamAsync(serial, 0, TestContext.Current.CancellationToken))
        {
            if (e.Seq is not null)
            {
                list.Add(e);
            }
        }

        return list;
    }

    public async ValueTask DisposeAsync()
    {
        if (_cluster is not null)
        {
            await Gateway.DisposeAsync();
            await _cluster.DisposeAsync();
        }

        _gate.Dispose();
    }
}
