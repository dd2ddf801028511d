using Microsoft.Extensions.DependencyInjection;
using Orleans.TestingHost;
using PumpFleet.EventStore;
using PumpFleet.Grains;

namespace PumpFleet.TestSupport;

/// <summary>
/// The one in-process Orleans test cluster of the test projects: the real pump grains over a real PostgreSQL database,
/// in-memory reminders, and hooks for what a test adds (a fake clock, options, the projection grains). Test projects
/// start clusters only through this class (tests/Architecture.Tests checks it).
/// </summary>
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

    /// <summary>The services of the first silo (the event store, the data source, the options the grains see).</summary>
    public IServiceProvider SiloServices => Cluster.Silos[0].ServiceProvider;

    /// <summary>
    /// Starts a cluster of <paramref name="silos"/> silos over <paramref name="connectionString"/>.
    /// <paramref name="configure"/> adds or replaces silo services (e.g. a <see cref="TimeProvider"/> or options);
    /// <paramref name="configureSilo"/> adds silo features (e.g. the projection grains). No cancellation token: a test
    /// that stops half-way disposes the cluster, and an optional token would oblige every caller to pass one.
    /// </summary>
    public static async Task<PumpCluster> StartAsync(
        string connectionString,
        int silos = 1,
        Action<IServiceCollection>? configure = null,
        Action<ISiloBuilder>? configureSilo = null)
    {
        var builder = new InProcessTestClusterBuilder((short)silos);
        builder.ConfigureSilo((_, silo) =>
        {
            silo.Services.AddPumpFleetEventStore(connectionString);
            silo.Services.AddPumpFleetGrains();
            silo.UseInMemoryReminderService();
            configure?.Invoke(silo.Services);
            configureSilo?.Invoke(silo);
        });
        var cluster = builder.Build();
        try
        {
            await cluster.DeployAsync();
        }
        catch
        {
            await cluster.DisposeAsync();
            throw;
        }

        return new PumpCluster(cluster, connectionString);
    }

    /// <summary>Kills silo <paramref name="index"/> abruptly (no graceful shutdown).</summary>
    public async Task KillSiloAsync(int index) => await Cluster.KillSiloAsync(Cluster.Silos[index]);

    /// <summary>Kills every silo: grain calls fail until <see cref="StartSiloAsync"/>.</summary>
    public async Task KillAllSilosAsync()
    {
        foreach (var silo in Cluster.Silos.ToList())
        {
            await Cluster.KillSiloAsync(silo);
        }
    }

    /// <summary>Starts one more silo (after <see cref="KillAllSilosAsync"/>, the cluster's only one).</summary>
    public async Task StartSiloAsync() => await Cluster.StartAdditionalSiloAsync();

    /// <inheritdoc />
    public async ValueTask DisposeAsync() => await Cluster.DisposeAsync();
}
