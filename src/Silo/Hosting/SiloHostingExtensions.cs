using System.Net;
using Orleans.Configuration;
using PumpFleet.EventStore;
using PumpFleet.Grains;

namespace PumpFleet.Silo.Hosting;

/// <summary>Composition of the silo.</summary>
public static class SiloHostingExtensions
{
    /// <summary>Registers the event store, the grains and the Orleans silo (localhost clustering unless configured otherwise).</summary>
    public static WebApplicationBuilder AddPumpFleetSilo(this WebApplicationBuilder builder, string connectionString)
    {
        builder.Services.AddPumpFleetEventStore(connectionString);
        builder.Services.AddPumpFleetGrains();
        builder.UseOrleans(silo =>
        {
            // Orleans binds its own "Orleans" section (ClusterId, ServiceId, provider blocks), so PumpFleet's switches
            // live under "PumpFleet" to stay out of its way.
            var config = builder.Configuration;
            var clusterId = config["Orleans:ClusterId"] ?? "pumpfleet-dev";
            var serviceId = config["Orleans:ServiceId"] ?? "pumpfleet";
            var siloPort = config.GetValue("PumpFleet:SiloPort", 11111);
            var gatewayPort = config.GetValue("PumpFleet:GatewayPort", 30000);
            var clustering = config["PumpFleet:Clustering"] ?? "Localhost";
            switch (clustering)
            {
                case "Localhost":
                    silo.UseLocalhostClustering(siloPort, gatewayPort, serviceId: serviceId, clusterId: clusterId);
                    silo.Configure<EndpointOptions>(o => o.AdvertisedIPAddress = IPAddress.Loopback);
                    break;
                default:
                    throw new InvalidOperationException($"PumpFleet:Clustering '{clustering}' is not supported; use 'Localhost'.");
            }

            silo.UseInMemoryReminderService();
            silo.AddMemoryGrainStorage("PubSubStore");
        });
        return builder;
    }
}
