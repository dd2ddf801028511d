using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;
using PumpFleet.EventStore;
using PumpFleet.Gateway.Hubs;
using PumpFleet.Gateway.Ingest;
using PumpFleet.Gateway.Mqtt;
using PumpFleet.Gateway.Quarantine;
using PumpFleet.Clustering;

namespace PumpFleet.Gateway.Hosting;

/// <summary>Composition of the gateway, for its own process and for the all-in-one host.</summary>
public static class GatewayServiceCollectionExtensions
{
    /// <summary>Name of the connection string (<c>ConnectionStrings:PumpFleet</c>).</summary>
    public const string ConnectionStringName = EventStoreServiceCollectionExtensions.ConnectionStringName;

    /// <summary>
    /// The quarantine store and the <c>pumpfleet.quarantine.size</c> gauge that asks it (needs the event store's data
    /// source). Gateways register it themselves; silos add it so the fleet's gauges come from one place as before.
    /// </summary>
    public static IServiceCollection AddPumpFleetQuarantineGauge(this IServiceCollection services)
    {
        services.AddMetrics();
        services.TryAddSingleton(TimeProvider.System);
        services.TryAddSingleton<QuarantineStore>();
        if (!services.Any(d => d.ServiceType == typeof(QuarantineGauge)))
        {
            services.AddSingleton<QuarantineGauge>();
            services.AddHostedService(sp => sp.GetRequiredService<QuarantineGauge>());
        }

        return services;
    }

    /// <summary>
    /// Registers the gateway: options (validated on start), stores, pipeline, metrics, the broker of the configured
    /// mode as a hosted service, and the 010 migration (applied on start when <c>PumpFleet:MigrateOnStart</c> is true; default: in Development only, production runs the silo's <c>migrate</c>).
    /// Needs an <see cref="IGrainFactory"/>: a co-hosted silo or <c>AddPumpFleetOrleansClient</c> of src/Clustering.
    /// </summary>
    public static IServiceCollection AddPumpFleetGateway(this IServiceCollection services, IConfiguration configuration)
    {
        services.AddOptions<MqttGatewayOptions>().Bind(configuration.GetSection(MqttGatewayOptions.SectionName)).ValidateOnStart();
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<MqttGatewayOptions>, MqttGatewayOptionsValidator>());
        services.AddOptions<HubAuthOptions>().Bind(configuration.GetSection(HubAuthOptions.SectionName)).ValidateOnStart();
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<HubAuthOptions>, HubAuthOptionsValidator>());

        var connectionString = configuration.GetConnectionString(ConnectionStringName);
        if (string.IsNullOrWhiteSpace(connectionString))
        {
            throw new InvalidOperationException(
                $"The gateway needs ConnectionStrings:{ConnectionStringName} (environment variable ConnectionStrings__{ConnectionStringName}).");
        }

        services.AddPumpFleetEventStore(connectionString);
        services.AddPumpFleetMigrations(typeof(GatewayServiceCollectionExtensions).Assembly);
        // Every process that migrates also brings the cluster schema, so switching to AdoNet clustering needs no extra step.
        services.AddPumpFleetClusterSchema();
        // Registered before the broker so the tables exist when the first hub connects; whether it migrates is decided
        // at start (PumpFleet:MigrateOnStart, default: only in Development).
        services.AddHostedService<MigrateOnStart>();

        services.AddMetrics();
        services.TryAddSingleton(TimeProvider.System);
        services.TryAddSingleton<GatewayInstruments>();
        services.TryAddSingleton<HubStore>();
        services.AddPumpFleetQuarantineGauge();
        services.TryAddSingleton<HubAuthenticator>();
        // Forgets what it verified for a hub as soon as the hub's credential changes (any mode: the CLI and the
        // external mode resolve it too).
        services.AddSingleton<IHubRegistryListener>(sp => sp.GetRequiredService<HubAuthenticator>());
        services.TryAddSingleton<HubAdmin>();
        services.TryAddSingleton<HubRegistryWatcher>();
        services.AddHostedService(sp => sp.GetRequiredService<HubRegistryWatcher>());
        services.AddOptions<QuarantineOptions>().Bind(configuration.GetSection(QuarantineOptions.SectionName)).ValidateOnStart();
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<QuarantineOptions>, QuarantineOptionsValidator>());
        services.TryAddSingleton<QuarantinePurger>();
        services.AddHostedService(sp => sp.GetRequiredService<QuarantinePurger>());
        services.TryAddSingleton<PoisonTracker>();
        services.TryAddSingleton<IngestPipeline>();
        services.TryAddSingleton<HubActivityTracker>();
        services.AddHostedService(sp => sp.GetRequiredService<HubActivityTracker>());

        var mode = configuration.GetValue($"{MqttGatewayOptions.SectionName}:Mode", GatewayMode.Embedded);
        if (mode == GatewayMode.External)
        {
            services.TryAddSingleton<ExternalBrokerClient>();
            services.TryAddSingleton<IHubReplyPublisher>(sp => sp.GetRequiredService<ExternalBrokerClient>());
            services.AddHostedService(sp => sp.GetRequiredService<ExternalBrokerClient>());
        }
        else
        {
            services.TryAddSingleton<EmbeddedBroker>();
            services.TryAddSingleton<IHubReplyPublisher>(sp => sp.GetRequiredService<EmbeddedBroker>());
            services.AddHostedService(sp => sp.GetRequiredService<EmbeddedBroker>());
            services.AddSingleton<IHubRegistryListener>(sp => sp.GetRequiredService<EmbeddedBroker>());
        }

        return services;
    }

    private sealed class MigrateOnStart(SchemaMigrator migrator, IConfiguration configuration, IHostEnvironment environment) : IHostedService
    {
        public Task StartAsync(CancellationToken cancellationToken) =>
            configuration.GetValue<bool?>(SchemaMigrator.MigrateOnStartKey) ?? environment.IsDevelopment()
                ? migrator.MigrateAsync(cancellationToken)
                : Task.CompletedTask;

        public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
    }
}
