using Orleans.Configuration;
using Orleans.Dashboard;

namespace PumpFleet.Dashboard.Hosting;

/// <summary>The stand-alone Dashboard process as an Orleans client: all of its cluster settings in one place.</summary>
public static class OrleansClientHostingExtensions
{
    /// <summary>
    /// <c>UseOrleansClient</c> with <c>PumpFleet:Clustering</c> = <c>Localhost</c> (default: the silo's gateway on
    /// <c>PumpFleet:GatewayPort</c>, default 30000) or <c>AdoNet</c> (membership in PostgreSQL,
    /// <c>ConnectionStrings:PumpFleet</c>), <c>Orleans:ClusterId</c> (default <c>pumpfleet-dev</c>) and
    /// <c>Orleans:ServiceId</c> (default <c>pumpfleet</c>) as in the silo host, plus the Orleans dashboard's client side.
    /// </summary>
    public static IHostApplicationBuilder UsePumpFleetOrleansClient(this IHostApplicationBuilder builder)
    {
        ArgumentNullException.ThrowIfNull(builder);
        // The same keys and defaults as the silo host (src/Silo), so a client started beside it finds it.
        var config = builder.Configuration;
        var clustering = config["PumpFleet:Clustering"] ?? "Localhost";
        var clusterId = config["Orleans:ClusterId"] ?? "pumpfleet-dev";
        var serviceId = config["Orleans:ServiceId"] ?? "pumpfleet";
        var gatewayPort = int.TryParse(config["PumpFleet:GatewayPort"], System.Globalization.CultureInfo.InvariantCulture, out var port) ? port : 30000;
        var connectionString = builder.Configuration.GetConnectionString("PumpFleet");
        builder.UseOrleansClient(client =>
        {
            if (string.Equals(clustering, "AdoNet", StringComparison.OrdinalIgnoreCase))
            {
                client.UseAdoNetClustering(o =>
                {
                    o.Invariant = "Npgsql";
                    o.ConnectionString = connectionString ?? throw new InvalidOperationException("Orleans:Clustering=AdoNet needs ConnectionStrings:PumpFleet.");
                });
                client.Configure<ClusterOptions>(o =>
                {
                    o.ClusterId = clusterId;
                    o.ServiceId = serviceId;
                });
            }
            else if (string.Equals(clustering, "Localhost", StringComparison.OrdinalIgnoreCase))
            {
                client.UseLocalhostClustering(gatewayPort, serviceId, clusterId);
            }
            else
            {
                throw new InvalidOperationException($"Orleans:Clustering must be Localhost or AdoNet, not '{clustering}'.");
            }

            client.AddDashboard();
        });
        return builder;
    }
}
