using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using PumpFleet.Domain.Detection;
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
}
