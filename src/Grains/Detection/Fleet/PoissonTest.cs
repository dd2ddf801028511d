namespace PumpFleet.Grains.Detection.Fleet;

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
        return k == 0 ? 1 : mu == 0 ? 0 : RegularizedLowerGamma(k, mu);
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

    /// <summary>Regularised lower incomplete gamma P(a, x): a power series below a + 1, a continued fraction above.</summary>
    public static double RegularizedLowerGamma(double a, double x)
    {
        if (x <= 0)
        {
            return 0;
        }

        var logPrefix = (a * Math.Log(x)) - x - LogGamma(a);
        if (x < a + 1)
        {
            double term = 1 / a, sum = term;
            for (var n = 1; n < 10_000; n++)
            {
                term *= x / (a + n);
                sum += term;
                if (Math.Abs(term) < Math.Abs(sum) * 1e-15)
                {
                    break;
                }
            }

            return Math.Min(1, sum * Math.Exp(logPrefix));
        }

        // Lentz's method for the continued fraction of Q(a, x).
        const double tiny = 1e-300;
        var b = x + 1 - a;
        var c = 1 / tiny;
        var d = 1 / b;
        var h = d;
        for (var i = 1; i < 10_000; i++)
        {
            var an = -i * (i - a);
            b += 2;
            d = (an * d) + b;
            d = Math.Abs(d) < tiny ? tiny : d;
            c = b + (an / c);
            c = Math.Abs(c) < tiny ? tiny : c;
            d = 1 / d;
            var delta = d * c;
            h *= delta;
            if (Math.Abs(delta - 1) < 1e-15)
            {
                break;
            }
        }

        return Math.Max(0, 1 - (Math.Exp(logPrefix) * h));
    }

    /// <summary>ln Γ(x) for x &gt; 0 (Lanczos, g = 7, n = 9).</summary>
    public static double LogGamma(double x)
    {
        ReadOnlySpan<double> g =
        [
            0.99999999999980993, 676.5203681218851, -1259.1392167224028, 771.32342877765313, -176.61502916214059,
            12.507343278686905, -0.13857109526572012, 9.9843695780195716e-6, 1.5056327351493116e-7,
        ];
        if (x < 0.5)
        {
            return Math.Log(Math.PI / Math.Abs(Math.Sin(Math.PI * x))) - LogGamma(1 - x);
        }

        x -= 1;
        var sum = g[0];
        for (var i = 1; i < g.Length; i++)
        {
            sum += g[i] / (x + i);
        }

        var t = x + 7.5;
        return (0.5 * Math.Log(2 * Math.PI)) + ((x + 0.5) * Math.Log(t)) - t + Math.Log(sum);
    }
}
