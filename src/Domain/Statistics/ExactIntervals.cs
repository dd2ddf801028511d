namespace PumpFleet.Domain.Statistics;

/// <summary>A two-sided confidence interval.</summary>
/// <param name="Lower">Lower bound.</param>
/// <param name="Upper">Upper bound.</param>
public readonly record struct Interval(double Lower, double Upper);

/// <summary>
/// Exact (not approximate) intervals for the two kinds of count surveillance reports: a Poisson count of events
/// over exposure (Garwood) and a binomial proportion of pumps affected (Clopper–Pearson). Both keep at least their
/// nominal coverage at the small counts cohorts have, where the normal approximation falls below it.
/// </summary>
public static class ExactIntervals
{
    /// <summary>
    /// Garwood's interval for the mean of a Poisson count k: lower = Γ⁻¹(α/2; k) (0 for k = 0),
    /// upper = Γ⁻¹(1 − α/2; k + 1), the chi-square form χ²(p; 2k)/2 written as gamma quantiles.
    /// </summary>
    public static Interval Poisson(long count, double confidence = 0.95)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(count);
        var alpha = Alpha(confidence);
        var lower = count == 0 ? 0 : Gamma.InverseLowerRegularized(count, alpha / 2);
        return new Interval(lower, Gamma.InverseLowerRegularized(count + 1, 1 - (alpha / 2)));
    }

    /// <summary>
    /// Clopper–Pearson's interval for x successes in n trials: lower = B⁻¹(α/2; x, n − x + 1) (0 for x = 0),
    /// upper = B⁻¹(1 − α/2; x + 1, n − x) (1 for x = n).
    /// </summary>
    public static Interval ClopperPearson(long successes, long trials, double confidence = 0.95)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(trials);
        ArgumentOutOfRangeException.ThrowIfNegative(successes);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(successes, trials);
        var alpha = Alpha(confidence);
        var lower = successes == 0 ? 0 : Beta.InverseRegularized(successes, trials - successes + 1, alpha / 2);
        var upper = successes == trials ? 1 : Beta.InverseRegularized(successes + 1, trials - successes, 1 - (alpha / 2));
        return new Interval(lower, upper);
    }

    /// <summary>P(X ≥ k) for X ~ Binomial(n, p): the exact one-sided test of "more pumps affected than p0 predicts".</summary>
    public static double BinomialUpperTail(long k, long n, double p)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(k);
        ArgumentOutOfRangeException.ThrowIfNegative(n);
        if (double.IsNaN(p) || p < 0 || p > 1)
        {
            throw new ArgumentOutOfRangeException(nameof(p), p, "p must be in [0, 1].");
        }

        if (k == 0)
        {
            return 1;
        }

        if (k > n || p == 0)
        {
            return 0;
        }

        return p == 1 ? 1 : Beta.Regularized(k, n - k + 1, p);
    }

    private static double Alpha(double confidence) =>
        confidence is > 0 and < 1 ? 1 - confidence : throw new ArgumentOutOfRangeException(nameof(confidence), confidence, "Confidence must be in (0, 1).");
}
