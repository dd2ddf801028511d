using PumpFleet.Domain.Statistics;

namespace PumpFleet.Dashboard.Stats;

/// <summary>An exact (Garwood) confidence interval for a Poisson count.</summary>
/// <param name="Lower">Lower bound of the expected count.</param>
/// <param name="Upper">Upper bound of the expected count.</param>
public readonly record struct PoissonInterval(double Lower, double Upper)
{
    /// <summary>
    /// Garwood's interval: lower = χ²(α/2; 2k)/2 = Γ⁻¹(α/2; k), upper = χ²(1−α/2; 2k+2)/2 = Γ⁻¹(1−α/2; k+1);
    /// the lower bound of a zero count is 0.
    /// </summary>
    public static PoissonInterval For(long count, double confidence = 0.95)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(count);
        if (confidence is <= 0 or >= 1)
        {
            throw new ArgumentOutOfRangeException(nameof(confidence), confidence, "Confidence must be in (0, 1).");
        }

        var alpha = 1 - confidence;
        var lower = count == 0 ? 0 : Gamma.InverseLowerRegularized(count, alpha / 2);
        var upper = Gamma.InverseLowerRegularized(count + 1, 1 - (alpha / 2));
        return new PoissonInterval(lower, upper);
    }
}
