using Microsoft.Extensions.Options;
using PumpFleet.Domain.Detection;

namespace PumpFleet.Grains.Detection;

/// <summary>
/// Checks <see cref="AnomalyDetectionOptions"/> at start-up (registered with <c>ValidateOnStart</c> wherever the options
/// are bound): each threshold within the range its XML doc argues for, and the pairs that must be ordered.
/// </summary>
public sealed class AnomalyDetectionOptionsValidator : IValidateOptions<AnomalyDetectionOptions>
{
    /// <inheritdoc />
    public ValidateOptionsResult Validate(string? name, AnomalyDetectionOptions o)
    {
        ArgumentNullException.ThrowIfNull(o);
        var errors = new List<string>();
        if (!(o.AccuracyBandFraction >= 0.01 && o.AccuracyBandFraction <= 0.5))
        {
            errors.Add($"PumpFleet:Detection:AccuracyBandFraction must be between 0.01 and 0.5, not {o.AccuracyBandFraction}.");
        }

        if (!(o.FlowCusumThresholdSigmas >= 1 && o.FlowCusumThresholdSigmas <= 50))
        {
            errors.Add($"PumpFleet:Detection:FlowCusumThresholdSigmas must be between 1 and 50, not {o.FlowCusumThresholdSigmas}.");
        }

        if (!(o.LevelNoiseFloorMl >= 0.001 && o.LevelNoiseFloorMl <= 5))
        {
            errors.Add($"PumpFleet:Detection:LevelNoiseFloorMl must be between 0.001 and 5, not {o.LevelNoiseFloorMl}.");
        }

        if (!(o.LevelNoisePriorMl >= 0.001 && o.LevelNoisePriorMl <= 5))
        {
            errors.Add($"PumpFleet:Detection:LevelNoisePriorMl must be between 0.001 and 5, not {o.LevelNoisePriorMl}.");
        }

        if (o.LevelNoisePriorReadings is < 0 or > 100_000)
        {
            errors.Add($"PumpFleet:Detection:LevelNoisePriorReadings must be between 0 and 100,000, not {o.LevelNoisePriorReadings}.");
        }

        if (o.FlowMinReadings is < 3 or > 1000)
        {
            errors.Add($"PumpFleet:Detection:FlowMinReadings must be between 3 and 1000, not {o.FlowMinReadings}.");
        }

        if (o.FlowResolveAfter < TimeSpan.FromHours(1) || o.FlowResolveAfter > TimeSpan.FromDays(365))
        {
            errors.Add($"PumpFleet:Detection:FlowResolveAfter must be between 1 h and 365 d, not {o.FlowResolveAfter}.");
        }

        if (!(o.PocketFillThresholdSmallMl >= 0.1 && o.PocketFillThresholdSmallMl <= 20))
        {
            errors.Add($"PumpFleet:Detection:PocketFillThresholdSmallMl must be between 0.1 and 20, not {o.PocketFillThresholdSmallMl}.");
        }

        if (!(o.PocketFillThresholdLargeMl >= 0.1 && o.PocketFillThresholdLargeMl <= 40))
        {
            errors.Add($"PumpFleet:Detection:PocketFillThresholdLargeMl must be between 0.1 and 40, not {o.PocketFillThresholdLargeMl}.");
        }

        if (!(o.RefillMinDiscrepancyMl >= 0 && o.RefillMinDiscrepancyMl <= 10))
        {
            errors.Add($"PumpFleet:Detection:RefillMinDiscrepancyMl must be between 0 and 10, not {o.RefillMinDiscrepancyMl}.");
        }

        if (o.PostRefillCheckWindow < TimeSpan.FromMinutes(10) || o.PostRefillCheckWindow > TimeSpan.FromDays(7))
        {
            errors.Add($"PumpFleet:Detection:PostRefillCheckWindow must be between 10 min and 7 d, not {o.PostRefillCheckWindow}.");
        }

        if (o.DepletionHorizon < TimeSpan.FromHours(1) || o.DepletionHorizon > TimeSpan.FromDays(60))
        {
            errors.Add($"PumpFleet:Detection:DepletionHorizon must be between 1 h and 60 d, not {o.DepletionHorizon}.");
        }

        if (o.DepletionCriticalHorizon < TimeSpan.Zero || o.DepletionCriticalHorizon > TimeSpan.FromDays(60))
        {
            errors.Add($"PumpFleet:Detection:DepletionCriticalHorizon must be between 0 and 60 d, not {o.DepletionCriticalHorizon}.");
        }

        if (o.StallRiskDuration < TimeSpan.FromHours(1) || o.StallRiskDuration > TimeSpan.FromDays(30))
        {
            errors.Add($"PumpFleet:Detection:StallRiskDuration must be between 1 h and 30 d, not {o.StallRiskDuration}.");
        }

        if (o.BatteryForecastHorizon < TimeSpan.FromDays(1) || o.BatteryForecastHorizon > TimeSpan.FromDays(3650))
        {
            errors.Add($"PumpFleet:Detection:BatteryForecastHorizon must be between 1 d and 3650 d, not {o.BatteryForecastHorizon}.");
        }

        if (o.BatteryMinReports is < 3 or > 10_000)
        {
            errors.Add($"PumpFleet:Detection:BatteryMinReports must be between 3 and 10,000, not {o.BatteryMinReports}.");
        }

        if (o.SilentWindow < TimeSpan.FromMinutes(5) || o.SilentWindow > TimeSpan.FromDays(30))
        {
            errors.Add($"PumpFleet:Detection:SilentWindow must be between 5 min and 30 d, not {o.SilentWindow}.");
        }

        if (o.SilentCheckInterval < TimeSpan.FromSeconds(1) || o.SilentCheckInterval > TimeSpan.FromDays(1))
        {
            errors.Add($"PumpFleet:Detection:SilentCheckInterval must be between 1 s and 1 d, not {o.SilentCheckInterval}.");
        }

        if (o.ReevaluateAfter < TimeSpan.FromMinutes(1) || o.ReevaluateAfter > TimeSpan.FromDays(7))
        {
            errors.Add($"PumpFleet:Detection:ReevaluateAfter must be between 1 min and 7 d, not {o.ReevaluateAfter}.");
        }

        if (o.IncompleteDataWait < TimeSpan.Zero || o.IncompleteDataWait > TimeSpan.FromDays(7))
        {
            errors.Add($"PumpFleet:Detection:IncompleteDataWait must be between 0 and 7 d, not {o.IncompleteDataWait}.");
        }

        if (o.MonitorPageSize is < 10 or > 100_000)
        {
            errors.Add($"PumpFleet:Detection:MonitorPageSize must be between 10 and 100,000, not {o.MonitorPageSize}.");
        }

        if (o.MonitorParallelism is < 1 or > 256)
        {
            errors.Add($"PumpFleet:Detection:MonitorParallelism must be between 1 and 256, not {o.MonitorParallelism}.");
        }

        if (o.CohortMinCount is < 1 or > 1000)
        {
            errors.Add($"PumpFleet:Detection:CohortMinCount must be between 1 and 1000, not {o.CohortMinCount}.");
        }

        if (!(o.CohortAlpha >= 1e-9 && o.CohortAlpha <= 0.5))
        {
            errors.Add($"PumpFleet:Detection:CohortAlpha must be between 1e-9 and 0.5, not {o.CohortAlpha}.");
        }

        if (o.CohortCheckInterval < TimeSpan.FromSeconds(1) || o.CohortCheckInterval > TimeSpan.FromDays(7))
        {
            errors.Add($"PumpFleet:Detection:CohortCheckInterval must be between 1 s and 7 d, not {o.CohortCheckInterval}.");
        }

        if (o.CohortFlowMinPumps is < 3 or > 100000)
        {
            errors.Add($"PumpFleet:Detection:CohortFlowMinPumps must be between 3 and 100000, not {o.CohortFlowMinPumps}.");
        }

        if (!(o.CohortFlowMargin >= 0 && o.CohortFlowMargin <= 0.5))
        {
            errors.Add($"PumpFleet:Detection:CohortFlowMargin must be between 0 and 0.5, not {o.CohortFlowMargin}.");
        }

        if (!(o.CohortFlowAlpha >= 1e-9 && o.CohortFlowAlpha <= 0.5))
        {
            errors.Add($"PumpFleet:Detection:CohortFlowAlpha must be between 1e-9 and 0.5, not {o.CohortFlowAlpha}.");
        }

        if (o.CohortFlowWindow < TimeSpan.FromDays(1) || o.CohortFlowWindow > TimeSpan.FromDays(3650))
        {
            errors.Add($"PumpFleet:Detection:CohortFlowWindow must be between 1 d and 3650 d, not {o.CohortFlowWindow}.");
        }

        if (!(o.CohortFlowMinCycleMl >= 0.1 && o.CohortFlowMinCycleMl <= 100))
        {
            errors.Add($"PumpFleet:Detection:CohortFlowMinCycleMl must be between 0.1 and 100 mL, not {o.CohortFlowMinCycleMl}.");
        }

        if (o.DepletionCriticalHorizon > o.DepletionHorizon)
        {
            errors.Add("PumpFleet:Detection:DepletionCriticalHorizon must not exceed PumpFleet:Detection:DepletionHorizon (the critical level is the nearer one).");
        }

        if (o.PocketFillThresholdSmallMl > o.PocketFillThresholdLargeMl)
        {
            errors.Add("PumpFleet:Detection:PocketFillThresholdSmallMl must not exceed PumpFleet:Detection:PocketFillThresholdLargeMl (a larger pump tolerates more).");
        }

        return errors.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(errors);
    }
}
