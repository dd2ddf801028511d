using Microsoft.Extensions.DependencyInjection;
using Orleans.TestingHost;
using PumpFleet.EventStore;
using PumpFleet.Grains;

namespace PumpFleet.Gateway.Tests.Infrastructure;

/// <summary>An in-process Orleans cluster running the real PumpGrain on a real PostgreSQL database.</summary>
public sealed class Cluster : IAsyncDisposable
{
    private readonly InProcessTestCluster _cluster;

    private Cluster(InProcessTestCluster cluster) => _cluster = cluster;

    public IGrainFactory Grains => _cluster.Client;

    public static async Task<Cluster> StartAsync(string connectionString)
    {
        var b = new InProcessTestClusterBuilder(1);
        b.ConfigureSilo((_, silo) =>
        {
            silo.Services.AddPumpFleetEventStore(connectionString);
            silo.Services.AddPumpFleetGrains();
        });
        var cluster = b.Build();
        await cluster.DeployAsync();
        return new Cluster(cluster);
    }

    /// <summary>Kills every silo: grain calls fail until <see cref="StartSiloAsync"/>.</summary>
    public async Task KillAllSilosAsync()
    {
        foreach (var silo in _cluster.Silos.ToList())
        {
            await _cluster.KillSiloAsync(silo);
        }
    }

    public async Task StartSiloAsync() => await _cluster.StartAdditionalSiloAsync();

    public async ValueTask DisposeAsync() => await _cluster.DisposeAsync();
}
