using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using PumpFleet.EventStore;
using PumpFleet.Grains;
using PumpFleet.Clustering;
using PumpFleet.TestSupport;

namespace PumpFleet.Cluster.Tests;

/// <summary>A silo host in this process composed exactly as the silo's own: the real UsePumpFleetClustering in AdoNet mode.</summary>
internal static class InProcessSilo
{
    public static Dictionary<string, string?> Config(string clusterId, int siloPort, int gatewayPort) => new()
    {
        ["PumpFleet:Clustering"] = "AdoNet",
        ["PumpFleet:SiloPort"] = siloPort.ToString(System.Globalization.CultureInfo.InvariantCulture),
        ["PumpFleet:GatewayPort"] = gatewayPort.ToString(System.Globalization.CultureInfo.InvariantCulture),
        ["PumpFleet:AdvertisedIP"] = "127.0.0.1",
        ["Orleans:ClusterId"] = clusterId,
        ["Orleans:ServiceId"] = "cluster-tests",
    };

    public static async Task<IHost> StartSiloAsync(string connectionString, string clusterId, int siloPort, int gatewayPort,
        IEnumerable<KeyValuePair<string, string?>>? extra = null)
    {
        var builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { DisableDefaults = true });
        builder.Configuration.AddInMemoryCollection(Config(clusterId, siloPort, gatewayPort));
        builder.Configuration.AddInMemoryCollection(extra ?? []);
        builder.Services.AddPumpFleetEventStore(connectionString);
        builder.Services.AddPumpFleetGrains();
        builder.UseOrleans(silo =>
        {
            silo.UsePumpFleetClustering(builder.Configuration, connectionString);
        });
        var host = builder.Build();
        await host.StartAsync(TestContext.Current.CancellationToken);
        return host;
    }

    public static async Task<IHost> StartClientAsync(string connectionString, string clusterId,
        IEnumerable<KeyValuePair<string, string?>>? extra = null, Action<IClientBuilder>? configure = null)
    {
        var builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { DisableDefaults = true });
        builder.Configuration.AddInMemoryCollection(Config(clusterId, 1, 2));
        builder.Configuration.AddInMemoryCollection(extra ?? []);
        builder.UseOrleansClient(client =>
        {
            client.UsePumpFleetClustering(builder.Configuration, connectionString);
            configure?.Invoke(client);
        });
        var host = builder.Build();
        await host.StartAsync(TestContext.Current.CancellationToken);
        return host;
    }
}
