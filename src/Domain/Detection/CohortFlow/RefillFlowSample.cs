namespace PumpFleet.Domain.Detection.CohortFlow;

/// <summary>
/// One pump's observed flow over a whole refill cycle, with the cohort it belongs to. Most implanted pumps have no
/// fill-level sensor, so the aspirated residual at a refill is the only observation of what really left the
/// reservoir (domain.md §3.3, §4): <see cref="Factor"/> is real consumption over motor-reported consumption.
/// </summary>
/// <param name="Serial">The pump.</param>
/// <param name="Model">Its model (a cohort dimension).</param>
/// <param name="Firmware">Its firmware (a cohort dimension).</param>
/// <param name="Lot">Its manufacturing lot (a cohort dimension).</param>
/// <param name="At">Event time of the refill that closed the cycle.</param>
/// <param name="Factor">Observed flow factor of the cycle: 1.15 means 15 % more left the reservoir than the motor reported.</param>
/// <param name="CycleMl">Motor volume of the cycle (the denominator; small cycles are noisy).</param>
public sealed record RefillFlowSample(string Serial, string? Model, string? Firmware, string? Lot, DateTimeOffset At, double Factor, double CycleMl);

/// <summary>The observed flow factor of a refill cycle.</summary>
public static class RefillFlow
{
    /// <summary>
    /// 1 + (expected − aspirated residual) / motor volume of the cycle, or null when the cycle is unknown (the first
    /// refill the platform sees) or its motor volume is below <paramref name="minCycleMl"/> (the ±0.1 mL syringe
    /// read-out would dominate the ratio).
    /// </summary>
    public static double? FactorOf(RefillCheck refill, double minCycleMl)
    {
        ArgumentNullException.ThrowIfNull(refill);
        if (refill.Refills == 0 || refill.CycleDeliveredMl is not { } cycle || cycle < minCycleMl || !double.IsFinite(cycle))
        {
            return null;
        }

        var factor = 1 + (refill.ResidualDiscrepancyMl / cycle);
        return double.IsFinite(factor) ? Math.Max(0, factor) : null;
    }
}
