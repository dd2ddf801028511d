using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Hosting;

namespace PumpFleet.Gateway.Hosting;

/// <summary>The gateway's Orleans client configuration, kept in one place (AdoNet clustering plugs in here).</summary>
public static class OrleansClientHostingExtensions
{
    /// <summary>
    /// Connects to the cluster as a client, with the same keys and defaults as the silo host:
    /// <c>PumpFleet:Clustering</c> (or <c>Orleans:Clustering</c>) = <c>Localhost</c> (default) uses the silo gateway port
    /// <c>PumpFleet:GatewayPort</c> (30000) with <c>Orleans:ServiceId</c> ("pumpfleet") and <c>Orleans:ClusterId</c> ("pumpfleet-dev").
    /// Do not call it in a host that also runs a silo: the silo provides the grain factory.
    /// </summary>
    public static IHostApplicationBuilder AddPumpFleetOrleansClient(this IHostApplicationBuilder builder)
    {
        var config = builder.Configuration;
        var clustering = config["PumpFleet:Clustering"] ?? config["Orleans:Clustering"] ?? "Localhost";
        var serviceId = config["Orleans:ServiceId"] ?? "pumpfleet";
        var clusterId = config["Orleans:ClusterId"] ?? "pumpfleet-dev";
        builder.UseOrleansClient(client =>
        {
            if (string.Equals(clustering, "Localhost", StringComparison.OrdinalIgnoreCase))
            {
                client.UseLocalhostClustering(config.GetValue("PumpFleet:GatewayPort", 30000), serviceId, clusterId);
            }
            else
            {
                throw new InvalidOperationException(
                    $"Clustering '{clustering}' is not supported by the gateway's Orleans client yet; use Localhost.");
            }
        });
        return builder;
    }
}
