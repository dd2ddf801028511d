using PumpFleet.EventStore;
using PumpFleet.Gateway.Hosting;
using PumpFleet.Grains;
using Orleans.Dashboard;
using PumpFleet.Clustering;
using PumpFleet.ReadModels;
using PumpFleet.Streaming;

namespace PumpFleet.Silo.Hosting;

/// <summary>Composition of the silo.</summary>
public static class SiloHostingExtensions
{
    /// <summary>Registers the event store, the grains and the Orleans silo (localhost clustering unless PumpFleet:Clustering says AdoNet).</summary>
    public static WebApplicationBuilder AddPumpFleetSilo(this WebApplicationBuilder builder, string connectionString)
    {
        builder.Services.AddPumpFleetEventStore(connectionString);
        builder.Services.AddPumpFleetClusterSchema();
        builder.Services.AddPumpFleetQuarantineGauge();

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
            // Mode, ports, advertised address, membership and reminder providers, timings: see PumpFleet.Clustering and
            // docs/cluster.md. Orleans binds its own "Orleans" section, so PumpFleet's switches live under "PumpFleet".
            silo.UsePumpFleetClustering(builder.Configuration, connectionString);
            // Projections run as grains spread over the silos (src/Projections engine, src/ReadModels); the Orleans dashboard's grains too.
            silo.AddPumpFleetProjections();
            // The event log as Orleans streams ("pumpfleet-log", src/Streaming): the live dashboard's push, and any
            // grain that reacts to committed events. Streaming:Enabled=false leaves it out. Explicit subscriptions (the
            // dashboard's) are kept in PostgreSQL, so they outlive the silo that held their pub-sub grain.
            silo.AddPumpFleetPubSubStore(connectionString);
            silo.AddPumpFleetLogStreams(builder.Configuration);
            silo.AddDashboard();
            // Grain calls carry the caller's trace context (W3C, in the request context); spans only when tracing is on.
            silo.AddActivityPropagation();
        });

        // Grains, their options, and the fleet-level detection jobs (silent pumps, cohort signals, cohort flow).
        // Registered after the silo: hosted services start in order, so the jobs' first run (at start) calls grains
        // on a running silo instead of racing its start-up (each early call was retried by Orleans with a warning).
        builder.Services.AddPumpFleetFleetJobs();
        return builder;
    }
}
