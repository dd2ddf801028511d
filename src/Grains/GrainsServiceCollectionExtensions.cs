using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using PumpFleet.Domain.Detection;
using PumpFleet.Grains.Detection.Fleet;
using PumpFleet.Grains.Pumps;

namespace PumpFleet.Grains;

/// <summary>Registration of what the grains need (the event store is registered separately).</summary>
public static class GrainsServiceCollectionExtensions
{
    /// <summary>Registers grain options (validated on start) and instruments.</summary>
    public static IServiceCollection AddPumpFleetGrains(this IServiceCollection services)
    {
        services.AddOptions<PumpGrainOptions>().BindConfiguration(PumpGrainOptions.SectionName).ValidateDataAnnotations().ValidateOnStart();
        services.AddOptions<AnomalyDetectionOptions>().BindConfiguration(AnomalyDetectionOptions.SectionName).ValidateDataAnnotations().ValidateOnStart();
        services.TryAddSingleton<PumpInstruments>();
        services.TryAddSingleton(TimeProvider.System);
        return services;
    }

    /// <summary>
    /// Registers the fleet-level detection jobs (silent-pump monitor, cohort signals) as hosted services. They need the
    /// event store's data source and run where <see cref="AnomalyDetectionOptions.RunFleetJobs"/> is true.
    /// </summary>
    public static IServiceCollection AddPumpFleetFleetDetection(this IServiceCollection services)
    {
        services.AddPumpFleetGrains();
        services.AddHostedService<SilentPumpMonitor>();
        services.AddHostedService<CohortSignalJob>();
        return services;
    }
}
