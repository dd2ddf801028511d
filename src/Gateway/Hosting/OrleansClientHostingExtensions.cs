using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Hosting;

namespace PumpFleet.Gateway.Hosting;

/// <summary>The gateway's Orleans client configuration, kept in one place (AdoNet clustering plugs in here).</summary>
public static class OrleansClientHostingExtensions
{
    /// <summary>
    /// Connects to the cluster as a client. <c>Orleans:Clustering</c> = <c>Localhost</c> (default) uses the gateway
    /// port <c>Orleans:GatewayPort</c> (30000) with <c>Orleans:ServiceId</c> / <c>Orleans:ClusterId</c> (default "dev").
    /// Do not call it in a host that also runs a silo: the silo provides the grain factory.
    /// </summary>
    public static IHostApplicationBuilder AddPumpFleetOrleansClient(this IHostApplicationBuilder builder)
    {
        var config = builder.Configuration;
        var clustering = config["Orleans:Clustering"] ?? "Localhost";
        var serviceId = config["Orleans:ServiceId"] ?? "dev";
        var clusterId = config["Orleans:ClusterId"] ?? "dev";
        builder.UseOrleansClient(client =>
        {
            if (string.Equals(clustering, "Localhost", StringComparison.OrdinalIgnoreCase))
            {
                client.UseLocalhostClustering(config.GetValue("Orleans:GatewayPort", 30000), serviceId, clusterId);
            }
            else
            {
                throw new InvalidOperationException(
                    $"Orleans:Clustering '{clustering}' is not supported by the gateway yet; use Localhost.");
            }
        });
        return builder;
    }
}
