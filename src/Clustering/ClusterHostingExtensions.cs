using Microsoft.Extensions.Configuration;
using System.Net;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Options;
using Orleans.Configuration;
using Orleans.Hosting;
using PumpFleet.EventStore;

namespace PumpFleet.Clustering;

/// <summary>
/// One place that decides how a PumpFleet process joins its cluster. The silo calls
/// <see cref="UsePumpFleetClustering(ISiloBuilder, IConfiguration, string)"/>; the gateway and the dashboard (Orleans
/// clients) call <see cref="UsePumpFleetClustering(IClientBuilder, IConfiguration, string?)"/> with the same configuration,
/// so both sides always agree on the mode, the cluster id and the database.
/// </summary>
public static class ClusterHostingExtensions
{
    /// <summary>The ADO.NET invariant of Npgsql; Orleans defaults to SQL Server's otherwise.</summary>
    public const string NpgsqlInvariant = "Npgsql";

    /// <summary>Cluster id when <c>Orleans:ClusterId</c> is not set.</summary>
    public const string DefaultClusterId = "pumpfleet-dev";

    /// <summary>Service id when <c>Orleans:ServiceId</c> is not set.</summary>
    public const string DefaultServiceId = "pumpfleet";

    /// <summary>
    /// Registers the Orleans clustering and reminder schema (migrations 030–039) with the schema migrator. Every
    /// process that runs migrations should call it, whatever the clustering mode, so that switching to AdoNet later
    /// needs no extra step.
    /// </summary>
    public static IServiceCollection AddPumpFleetClusterSchema(this IServiceCollection services) =>
        services.AddPumpFleetMigrations(typeof(ClusterHostingExtensions).Assembly);

    /// <summary>
    /// Silo side: ClusterOptions, endpoints, membership (localhost or PostgreSQL), reminders (in memory with
    /// localhost clustering, PostgreSQL with AdoNet), membership timings and, when asked, mutual TLS and Kubernetes hosting.
    /// </summary>
    public static ISiloBuilder UsePumpFleetClustering(this ISiloBuilder silo, IConfiguration configuration, string connectionString)
    {
        ArgumentNullException.ThrowIfNull(silo);
        var options = PumpFleetClusterOptions.Read(configuration);
        var (clusterId, serviceId) = Ids(configuration);
        silo.Services.AddOptions<PumpFleetClusterOptions>().BindConfiguration(PumpFleetClusterOptions.SectionName).ValidateOnStart();
        silo.Services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<PumpFleetClusterOptions>, PumpFleetClusterOptionsValidator>());

        switch (options.Clustering)
        {
            case ClusteringMode.Localhost:
                // Localhost clustering has one fixed primary silo; a second silo on the same machine would need its
                // own ports and the primary's endpoint, which is what AdoNet mode is for.
                silo.UseLocalhostClustering(options.SiloPort, options.GatewayPort, serviceId: serviceId, clusterId: clusterId);
                silo.Configure<EndpointOptions>(o => o.AdvertisedIPAddress = AdvertisedAddress(options) ?? IPAddress.Loopback);
                silo.UseInMemoryReminderService();
                break;

            case ClusteringMode.AdoNet:
                ArgumentException.ThrowIfNullOrWhiteSpace(connectionString);
                silo.Configure<ClusterOptions>(o =>
                {
                    o.ClusterId = clusterId;
                    o.ServiceId = serviceId;
                });
                var advertised = AdvertisedAddress(options);
                silo.Configure<EndpointOptions>(o =>
                {
                    o.SiloPort = options.SiloPort;
                    o.GatewayPort = options.GatewayPort;
                    if (advertised is not null)
                    {
                        o.AdvertisedIPAddress = advertised;
                    }

                    // A loopback silo listens on loopback only; anything else listens on every interface, because in a
                    // container the advertised pod IP and the interface address can differ.
                    var listenOn = advertised is not null && IPAddress.IsLoopback(advertised) ? advertised : IPAddress.Any;
                    o.SiloListeningEndpoint = new IPEndPoint(listenOn, options.SiloPort);
                    o.GatewayListeningEndpoint = new IPEndPoint(listenOn, options.GatewayPort);
                });
                silo.UseAdoNetClustering(o =>
                {
                    o.Invariant = NpgsqlInvariant;
                    o.ConnectionString = connectionString;
                });
                silo.UseAdoNetReminderService(o =>
                {
                    o.Invariant = NpgsqlInvariant;
                    o.ConnectionString = connectionString;
                });
                break;

            default:
                throw new InvalidOperationException($"PumpFleet:Clustering '{options.Clustering}' is not supported; use Localhost or AdoNet.");
        }

        var timings = options.Membership;
        silo.Configure<ClusterMembershipOptions>(o =>
        {
            o.ProbeTimeout = timings.ProbeTimeout;
            o.NumMissedProbesLimit = timings.NumMissedProbesLimit;
            o.IAmAliveTablePublishTimeout = timings.IAmAliveTablePublishTimeout;
            o.TableRefreshTimeout = timings.TableRefreshTimeout;
            o.DefunctSiloCleanupPeriod = timings.DefunctSiloCleanupPeriod;
            o.DefunctSiloExpiration = timings.DefunctSiloExpiration;
        });

        if (options.Tls.Enabled)
        {
            ClusterTls.Apply(silo, options.Tls);
        }

        if (options.KubernetesHosting)
        {
            // Sets ClusterId/ServiceId and endpoints from the pod (ORLEANS_* and POD_* variables) and deletes the pods
            // of silos that membership declared dead. Compile-verified only: no Kubernetes API server here.
            silo.UseKubernetesHosting();
        }

        return silo;
    }

    /// <summary>
    /// Client side (gateway, dashboard, tools): finds the silos' gateways on loopback (<c>Localhost</c>, port
    /// <c>PumpFleet:GatewayPort</c>) or in the PostgreSQL membership table (<c>AdoNet</c>); with <c>PumpFleet:Tls</c>,
    /// presents its certificate and checks the silos' (<see cref="ClusterTlsOptions"/>).
    /// </summary>
    public static IClientBuilder UsePumpFleetClustering(this IClientBuilder client, IConfiguration configuration, string? connectionString)
    {
        ArgumentNullException.ThrowIfNull(client);
        var options = PumpFleetClusterOptions.Read(configuration);
        var (clusterId, serviceId) = Ids(configuration);
        switch (options.Clustering)
        {
            case ClusteringMode.Localhost:
                client.UseLocalhostClustering(options.GatewayPort, serviceId, clusterId);
                break;

            case ClusteringMode.AdoNet:
                ArgumentException.ThrowIfNullOrWhiteSpace(connectionString);
                client.Configure<ClusterOptions>(o =>
                {
                    o.ClusterId = clusterId;
                    o.ServiceId = serviceId;
                });
                client.UseAdoNetClustering(o =>
                {
                    o.Invariant = NpgsqlInvariant;
                    o.ConnectionString = connectionString;
                });
                break;

            default:
                throw new InvalidOperationException($"PumpFleet:Clustering '{options.Clustering}' is not supported; use Localhost or AdoNet.");
        }

        client.Configure<GatewayOptions>(o => o.GatewayListRefreshPeriod = options.Membership.GatewayListRefreshPeriod);
        if (options.Tls.Enabled)
        {
            ClusterTls.Apply(client, options.Tls);
        }

        return client;
    }

    private static (string ClusterId, string ServiceId) Ids(IConfiguration configuration) =>
        (configuration["Orleans:ClusterId"] is { Length: > 0 } c ? c : DefaultClusterId,
         configuration["Orleans:ServiceId"] is { Length: > 0 } s ? s : DefaultServiceId);

    private static IPAddress? AdvertisedAddress(PumpFleetClusterOptions options)
    {
        if (options.AdvertisedIP is { Length: > 0 } configured)
        {
            return IPAddress.Parse(configured);
        }

        return Environment.GetEnvironmentVariable("POD_IP") is { Length: > 0 } podIp && IPAddress.TryParse(podIp, out var pod) ? pod : null;
    }
}
