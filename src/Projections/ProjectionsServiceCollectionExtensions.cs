using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using PumpFleet.EventStore;

namespace PumpFleet.Projections;

/// <summary>Registration of the projections.</summary>
public static class ProjectionsServiceCollectionExtensions
{
    /// <summary>
    /// What any process needs to use the read models: options, migrations, the projections, the runner and the
    /// <see cref="ProjectionRebuilder"/> (the event store must be registered too). No background work.
    /// </summary>
    public static IServiceCollection AddPumpFleetReadModels(this IServiceCollection services)
    {
        services.AddOptions<ProjectionOptions>().BindConfiguration(ProjectionOptions.SectionName).ValidateDataAnnotations().ValidateOnStart();
        if (!services.Any(d => d.ServiceType == typeof(MigrationAssembly) && d.ImplementationInstance is MigrationAssembly m && m.Assembly == typeof(PumpProjection).Assembly))
        {
            services.AddPumpFleetMigrations(typeof(PumpProjection).Assembly);
        }

        services.TryAddEnumerable(ServiceDescriptor.Singleton<IProjection, PumpProjection>());
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IProjection, AnomalyProjection>());
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IProjection, CohortProjection>());
        services.TryAddSingleton<ProjectionRunner>();
        services.TryAddSingleton<ProjectionRebuilder>();
        services.TryAddSingleton(TimeProvider.System);
        return services;
    }

    /// <summary>
    /// For a silo: the read models plus the projection grains' keeper and the gauges of meter
    /// <see cref="ProjectionMetrics.MeterName"/>. With <c>Projections:Enabled=false</c> the silo runs no projection.
    /// </summary>
    public static IServiceCollection AddPumpFleetProjections(this IServiceCollection services)
    {
        services.AddPumpFleetReadModels();
        services.TryAddSingleton<ProjectionMetrics>();
        services.AddHostedService(sp => sp.GetRequiredService<ProjectionMetrics>());
        services.AddHostedService<ProjectionKeeper>();
        return services;
    }

    /// <summary>Registers the projections in a silo (see <see cref="AddPumpFleetProjections(IServiceCollection)"/>).</summary>
    public static ISiloBuilder AddPumpFleetProjections(this ISiloBuilder silo)
    {
        ArgumentNullException.ThrowIfNull(silo);
        silo.Services.AddPumpFleetProjections();
        return silo;
    }
}
