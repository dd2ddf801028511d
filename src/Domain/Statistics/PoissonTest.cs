namespace PumpFleet.Domain.Statistics;

/// <summary>
/// Exact Poisson tail probabilities and Garwood confidence bounds, from the regularised incomplete gamma function
/// (P(X ≥ k | μ) = P(k, μ), the lower regularised gamma), so cohort counts as small as 3 are tested exactly
/// rather than by a normal approximation.
/// </summary>
public static class PoissonTest
{
    /// <summary>P(X ≥ k) for X ~ Poisson(μ).</summary>
    public static double UpperTail(long k, double mu)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(k);
        ArgumentOutOfRangeException.ThrowIfNegative(mu);
        return k == 0 ? 1 : mu == 0 ? 0 : Gamma.LowerRegularized(k, mu);
    }

    /// <summary>Exact (Garwood) lower confidence bound of a Poisson mean given k events, one-sided level 1 − <paramref name="alpha"/>.</summary>
    public static double LowerBound(long k, double alpha)
    {
        if (k == 0)
        {
            return 0;
        }

        // P(X ≥ k | μ) rises with μ: bisect for the μ at which it equals alpha.
        double lo = 0, hi = Math.Max(10, 4 * k);
        while (UpperTail(k, hi) < alpha)
        {
            hi *= 2;
        }

        for (var i = 0; i < 200 && hi - lo > 1e-12 * Math.Max(1, hi); i++)
        {
            var mid = (lo + hi) / 2;
            if (UpperTail(k, mid) < alpha)
            {
                lo = mid;
            }
            else
            {
                hi = mid;
            }
        }

        return (lo + hi) / 2;
    }
}
