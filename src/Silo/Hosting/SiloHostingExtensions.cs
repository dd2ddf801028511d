using PumpFleet.EventStore;
using PumpFleet.Grains;
using Orleans.Dashboard;
using PumpFleet.Hosting;
using PumpFleet.Projections;

namespace PumpFleet.Silo.Hosting;

/// <summary>Composition of the silo.</summary>
public static class SiloHostingExtensions
{
    /// <summary>Registers the event store, the grains and the Orleans silo (localhost clustering unless PumpFleet:Clustering says AdoNet).</summary>
    public static WebApplicationBuilder AddPumpFleetSilo(this WebApplicationBuilder builder, string connectionString)
    {
        builder.Services.AddPumpFleetEventStore(connectionString);
        // Grains, their options, and the fleet-level detection jobs (silent pumps, cohort signals).
        builder.Services.AddPumpFleetFleetDetection();
        builder.Services.AddPumpFleetClusterSchema();

        // A silo that stops deactivates its grains and leaves the membership table before the host gives up; PumpGrain
        // state is durable per call, so this is about not cutting in-flight calls. DOTNET_SHUTDOWNTIMEOUTSECONDS
        // (the Helm chart sets it below terminationGracePeriodSeconds) overrides this default.
        builder.Services.Configure<HostOptions>(o =>
        {
            if (Environment.GetEnvironmentVariable("DOTNET_SHUTDOWNTIMEOUTSECONDS") is null)
            {
                o.ShutdownTimeout = TimeSpan.FromSeconds(60);
            }
        });
        builder.UseOrleans(silo =>
        {
            // Mode, ports, advertised address, membership and reminder providers, timings: see PumpFleet.Hosting and
            // docs/cluster.md. Orleans binds its own "Orleans" section, so PumpFleet's switches live under "PumpFleet".
            silo.UsePumpFleetClustering(builder.Configuration, connectionString);
            silo.AddMemoryGrainStorage("PubSubStore");
            // Projections run as grains spread over the silos (src/Projections); the Orleans dashboard's grains too.
            silo.AddPumpFleetProjections();
            silo.AddDashboard();
            // Grain calls carry the caller's trace context (W3C, in the request context); spans only when tracing is on.
            silo.AddActivityPropagation();
        });
        return builder;
    }
}
