using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Hosting;
using PumpFleet.EventStore;

namespace PumpFleet.Clustering;

/// <summary>The one Orleans-client composition of every process that is not a silo (gateway, dashboard, CLIs).</summary>
public static class OrleansClientHostingExtensions
{
    /// <summary>
    /// Connects to the cluster as a client with the same settings as the silo (<c>PumpFleet:Clustering</c> Localhost or
    /// AdoNet membership in <c>ConnectionStrings:PumpFleet</c>, <c>PumpFleet:GatewayPort</c>,
    /// <c>Orleans:ClusterId</c>/<c>ServiceId</c>; see <see cref="ClusterHostingExtensions"/>). <paramref name="configure"/>
    /// adds what one client needs beyond that (the dashboard: the Orleans dashboard's client side). Do not call it in a
    /// host that also runs a silo: the silo provides the grain factory.
    /// </summary>
    public static IHostApplicationBuilder AddPumpFleetOrleansClient(this IHostApplicationBuilder builder, Action<IClientBuilder>? configure = null)
    {
        ArgumentNullException.ThrowIfNull(builder);
        var config = builder.Configuration;
        var connectionString = config.GetConnectionString(EventStoreServiceCollectionExtensions.ConnectionStringName);
        builder.UseOrleansClient(client =>
        {
            client.UsePumpFleetClustering(config, connectionString).AddActivityPropagation();
            configure?.Invoke(client);
        });
        return builder;
    }
}
