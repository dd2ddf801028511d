using Microsoft.Extensions.DependencyInjection;
using Orleans.TestingHost;
using PumpFleet.EventStore;
using PumpFleet.Grains;

namespace PumpFleet.TestSupport;

/// <summary>An in-process Orleans cluster hosting the real pump grains over a real PostgreSQL database.</summary>
public sealed class PumpCluster : IAsyncDisposable
{
    private PumpCluster(InProcessTestCluster cluster, string connectionString)
    {
        Cluster = cluster;
        ConnectionString = connectionString;
    }

    /// <summary>The cluster.</summary>
    public InProcessTestCluster Cluster { get; }

    /// <summary>The database the grains write to.</summary>
    public string ConnectionString { get; }

    /// <summary>Grain factory of the cluster's client.</summary>
    public IGrainFactory Grains => Cluster.Client;

    /// <summary>Starts a cluster of <paramref name="silos"/> silos over <paramref name="connectionString"/>.</summary>
    public static async Task<PumpCluster> StartAsync(string connectionString, int silos = 1, Action<IServiceCollection>? configure = null)
    {
        var builder = new InProcessTestClusterBuilder((short)silos);
        builder.ConfigureSilo((_, silo) =>
        {
            silo.Services.AddPumpFleetEventStore(connectionString);
            silo.Services.AddPumpFleetGrains();
            configure?.Invoke(silo.Services);
        });
        var cluster = builder.Build();
        await cluster.DeployAsync();
        return new PumpCluster(cluster, connectionString);
    }

    /// <inheritdoc />
    public async ValueTask DisposeAsync() => await Cluster.DisposeAsync();
}
