using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Hosting;
using PumpFleet.Hosting;

namespace PumpFleet.Gateway.Hosting;

/// <summary>The gateway's Orleans client, kept in one place.</summary>
public static class OrleansClientHostingExtensions
{
    /// <summary>
    /// Connects to the cluster as a client with the same settings as the silo (<c>PumpFleet:Clustering</c> Localhost or
    /// AdoNet, <c>PumpFleet:GatewayPort</c>, <c>Orleans:ClusterId</c>/<c>ServiceId</c>; see
    /// <see cref="ClusterHostingExtensions"/>). Do not call it in a host that also runs a silo: the silo provides the
    /// grain factory.
    /// </summary>
    public static IHostApplicationBuilder AddPumpFleetOrleansClient(this IHostApplicationBuilder builder)
    {
        var config = builder.Configuration;
        var connectionString = config.GetConnectionString(GatewayServiceCollectionExtensions.ConnectionStringName);
        builder.UseOrleansClient(client => client.UsePumpFleetClustering(config, connectionString).AddActivityPropagation());
        return builder;
    }
}
