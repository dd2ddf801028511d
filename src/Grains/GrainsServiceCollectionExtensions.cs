using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Options;
using PumpFleet.Domain.Detection;
using PumpFleet.Grains.Detection;
using PumpFleet.Grains.Pumps;

namespace PumpFleet.Grains;

/// <summary>Registration of what the grains need (the event store is registered separately).</summary>
public static class GrainsServiceCollectionExtensions
{
    /// <summary>Registers grain options (validated on start) and instruments.</summary>
    public static IServiceCollection AddPumpFleetGrains(this IServiceCollection services)
    {
        services.AddOptions<PumpGrainOptions>().BindConfiguration(PumpGrainOptions.SectionName).ValidateOnStart();
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<PumpGrainOptions>, PumpGrainOptionsValidator>());
        services.AddPumpFleetDetectionOptions();
        services.TryAddSingleton<PumpInstruments>();
        services.TryAddSingleton<PumpGrainServices>();
        services.TryAddSingleton(TimeProvider.System);
        return services;
    }

    /// <summary>Binds <see cref="AnomalyDetectionOptions"/> (<c>PumpFleet:Detection</c>), validated on start.</summary>
    public static IServiceCollection AddPumpFleetDetectionOptions(this IServiceCollection services)
    {
        services.AddOptions<AnomalyDetectionOptions>().BindConfiguration(AnomalyDetectionOptions.SectionName).ValidateOnStart();
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<AnomalyDetectionOptions>, AnomalyDetectionOptionsValidator>());
        return services;
    }
}
