using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Options;
using PumpFleet.EventStore;

namespace PumpFleet.Projections;

/// <summary>Registration of the projection engine (the read models register their projections on top).</summary>
public static class ProjectionsServiceCollectionExtensions
{
    /// <summary>Options, the runner, the rebuilder and the progress store (the event store must be registered too). No background work.</summary>
    public static IServiceCollection AddPumpFleetProjectionEngine(this IServiceCollection services)
    {
        services.AddOptions<ProjectionOptions>().BindConfiguration(ProjectionOptions.SectionName).ValidateOnStart();
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<ProjectionOptions>, ProjectionOptionsValidator>());
        services.TryAddSingleton<ProjectionRunner>();
        services.TryAddSingleton<ProjectionRebuilder>();
        services.TryAddSingleton<ProjectionProgressStore>();
        services.TryAddSingleton<ParkedEventStore>();
        services.TryAddSingleton<ProjectionInstruments>();
        services.TryAddSingleton<PageStageTimes>();
        services.AddMetrics();
        if (!services.Any(d => d.ServiceType == typeof(MigrationAssembly) && d.ImplementationInstance is MigrationAssembly m && m.Assembly == typeof(ProjectionRunner).Assembly))
        {
            // pf_projection_parked (migration 050).
            services.AddPumpFleetMigrations(typeof(ProjectionRunner).Assembly);
        }

        services.TryAddSingleton(TimeProvider.System);
        return services;
    }

    /// <summary>The keeper that activates every projection grain on this silo (see <see cref="ProjectionKeeper"/>).</summary>
    public static IServiceCollection AddPumpFleetProjectionKeeper(this IServiceCollection services)
    {
        services.AddHostedService<ProjectionKeeper>();
        return services;
    }
}
