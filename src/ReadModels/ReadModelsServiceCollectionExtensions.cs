using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Options;
using PumpFleet.EventStore;
using PumpFleet.Grains;
using PumpFleet.Domain.Detection;
using PumpFleet.Projections;

namespace PumpFleet.ReadModels;

/// <summary>Registration of the read models.</summary>
public static class ReadModelsServiceCollectionExtensions
{
    /// <summary>
    /// What any process needs to use the read models: the projection engine (options, runner, rebuilder), the
    /// read models' migrations, projections and queries (the event store must be registered too). No background work.
    /// </summary>
    public static IServiceCollection AddPumpFleetReadModels(this IServiceCollection services)
    {
        services.AddPumpFleetProjectionEngine();
        if (!services.Any(d => d.ServiceType == typeof(MigrationAssembly) && d.ImplementationInstance is MigrationAssembly m && m.Assembly == typeof(PumpProjection).Assembly))
        {
            services.AddPumpFleetMigrations(typeof(PumpProjection).Assembly);
        }

        services.AddOptions<PumpProjectionOptions>().BindConfiguration(PumpProjectionOptions.SectionName).ValidateOnStart();
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<PumpProjectionOptions>, PumpProjectionOptionsValidator>());
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IProjection, PumpProjection>());
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IProjection, AnomalyProjection>());
        services.AddOptions<CohortProjectionOptions>().BindConfiguration(CohortProjectionOptions.SectionName).ValidateOnStart();
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<CohortProjectionOptions>, CohortProjectionOptionsValidator>());
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IProjection, CohortProjection>());
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IProjection, TherapyProjection>());
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IProjection, IngestProjection>());
        services.TryAddSingleton<IReadModelQueries, ReadModelQueries>();
        services.AddOptions<PartitionTallyOptions>().BindConfiguration(PartitionTallyOptions.SectionName).ValidateOnStart();
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<PartitionTallyOptions>, PartitionTallyOptionsValidator>());
        services.TryAddSingleton<CohortTallyStore>();
        services.TryAddSingleton<CohortFlowTallyStore>();
        return services;
    }

    /// <summary>
    /// For a silo: the read models plus the projection grains' keeper and the gauges of meter
    /// <see cref="ProjectionMetrics.MeterName"/>. With <c>Projections:Enabled=false</c> the silo runs no projection.
    /// </summary>
    public static IServiceCollection AddPumpFleetProjections(this IServiceCollection services)
    {
        services.AddPumpFleetReadModels();
        // The silent gauge counts with the same window as the silent anomaly (one definition of silent).
        services.AddPumpFleetDetectionOptions();
        services.TryAddSingleton<ProjectionMetrics>();
        services.AddHostedService(sp => sp.GetRequiredService<ProjectionMetrics>());
        services.AddPumpFleetProjectionKeeper();
        return services;
    }

    /// <summary>Registers the projections in a silo (see <see cref="AddPumpFleetProjections(IServiceCollection)"/>).</summary>
    public static ISiloBuilder AddPumpFleetProjections(this ISiloBuilder silo)
    {
        ArgumentNullException.ThrowIfNull(silo);
        silo.Services.AddPumpFleetProjections();
        return silo;
    }

    /// <summary>
    /// The fleet-level detection jobs that work from the read models (silent-pump monitor, cohort signals) as hosted
    /// services, with the grains' options they read. They run where <c>PumpFleet:Detection:RunFleetJobs</c> is true.
    /// </summary>
    public static IServiceCollection AddPumpFleetFleetJobs(this IServiceCollection services)
    {
        services.AddPumpFleetGrains();
        services.AddHostedService<SilentPumpMonitor>();
        services.AddHostedService<CohortSignalJob>();
        services.AddHostedService<CohortFlowJob>();
        return services;
    }
}
