using Orleans.Dashboard;
using PumpFleet.Hosting;

namespace PumpFleet.Dashboard.Hosting;

/// <summary>The stand-alone Dashboard process as an Orleans client: all of its cluster settings in one place.</summary>
public static class OrleansClientHostingExtensions
{
    /// <summary>
    /// <c>UseOrleansClient</c> with the platform's shared client clustering (src/Hosting: <c>PumpFleet:Clustering</c>
    /// Localhost on <c>PumpFleet:GatewayPort</c>, or AdoNet membership in <c>ConnectionStrings:PumpFleet</c>;
    /// <c>Orleans:ClusterId</c>/<c>ServiceId</c> as the silos), plus the Orleans dashboard's client side.
    /// </summary>
    public static IHostApplicationBuilder UsePumpFleetOrleansClient(this IHostApplicationBuilder builder)
    {
        ArgumentNullException.ThrowIfNull(builder);
        var connectionString = builder.Configuration.GetConnectionString("PumpFleet");
        builder.UseOrleansClient(client =>
        {
            client.UsePumpFleetClustering(builder.Configuration, connectionString);
            client.AddDashboard();
        });
        return builder;
    }
}
