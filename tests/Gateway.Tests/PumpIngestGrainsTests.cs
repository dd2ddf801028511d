using Orleans.Runtime;
using PumpFleet.Contracts.Grains;
using PumpFleet.Gateway.Ingest;
using PumpFleet.Gateway.Tests.Infrastructure;
using PumpFleet.TestSupport;

namespace PumpFleet.Gateway.Tests;

/// <summary>
/// The gateway's cached grain-type resolution (issue 15: no reflection per message) addresses exactly the grain that
/// Orleans' own <c>GetGrain&lt;IPumpIngestGrain&gt;(serial)</c> does, for the first serial (resolved) and every later one
/// (cached), and a call through a cached reference reaches the pump; a wrapped factory is never bypassed.
/// </summary>
public sealed class PumpIngestGrainsTests(PostgresFixture pg, EmbeddedEnvironment env) : IClassFixture<EmbeddedEnvironment>, IAsyncLifetime
{
    public async ValueTask InitializeAsync() => await env.EnsureStartedAsync(pg);

    public ValueTask DisposeAsync() => ValueTask.CompletedTask;

    [Fact]
    public async Task CachedReferences_AddressTheSameGrainAsOrleans_AndReachIt()
    {
        var grains = env.Cluster.Grains;
        var pumps = new PumpIngestGrains(grains);
        var serials = Enumerable.Range(0, 3).Select(_ => $"RES-{Guid.NewGuid():N}"[..20]).ToArray();
        foreach (var serial in serials)
        {
            var cached = (GrainReference)pumps.Get(serial);
            var orleans = (GrainReference)grains.GetGrain<IPumpIngestGrain>(serial);
            Assert.Equal(orleans.GrainId, cached.GrainId);
            Assert.Equal(orleans.InterfaceType, cached.InterfaceType);
        }

        // The last reference came from the cache: pairing through it lands on the pump the query grain reads.
        var hub = $"hub-{Guid.NewGuid():N}"[..20];
        await pumps.Get(serials[2]).PairAsync(hub, "test:resolver");
        Assert.Equal(hub, (await grains.GetGrain<IPumpQueryGrain>(serials[2]).GetStateAsync()).HubId);
    }

    [Fact]
    public void WrappedFactory_IsAskedForEveryReference()
    {
        var wrapped = PoisonGrainFactory.Wrap(env.Cluster.Grains);
        var pumps = new PumpIngestGrains(wrapped);
        Assert.IsType<GrainReference>(pumps.Get($"OK-{Guid.NewGuid():N}"[..20]), exactMatch: false);
        // A poisoned serial after a normal one still gets the wrapper's grain, not a reference built from a cache.
        Assert.IsNotType<GrainReference>(pumps.Get(PoisonGrainFactory.Prefix + Guid.NewGuid().ToString("N")[..10]), exactMatch: false);
    }
}
