namespace PumpFleet.Domain.Statistics;

/// <summary>
/// The regularised incomplete beta function I_x(a, b) and its inverse in x, enough for exact binomial tails and
/// Clopper–Pearson intervals (the binomial CDF is an incomplete beta: P(X ≥ k | n, p) = I_p(k, n − k + 1)).
/// The continued fraction of Abramowitz and Stegun 26.5.8, evaluated with the modified Lentz method, and the
/// symmetry I_x(a, b) = 1 − I_{1−x}(b, a) to stay where it converges fast; the inverse bisects, which cannot diverge.
/// </summary>
public static class Beta
{
    /// <summary>I_x(a, b) for a, b &gt; 0 and x in [0, 1].</summary>
    public static double Regularized(double a, double b, double x)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(a);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(b);
        if (double.IsNaN(x) || x < 0 || x > 1)
        {
            throw new ArgumentOutOfRangeException(nameof(x), x, "x must be in [0, 1].");
        }

        if (x == 0 || x == 1)
        {
            return x;
        }

        // The fraction converges quickly for x < (a + 1) / (a + b + 2); otherwise use the mirror image.
        if (x > (a + 1) / (a + b + 2))
        {
            return 1 - Regularized(b, a, 1 - x);
        }

        var front = Math.Exp(Gamma.LogGamma(a + b) - Gamma.LogGamma(a) - Gamma.LogGamma(b) + (a * Math.Log(x)) + (b * Math.Log(1 - x))) / a;
        return Math.Clamp(front * ContinuedFraction(a, b, x), 0, 1);
    }

    /// <summary>The x with I_x(a, b) = p (the p-quantile of a Beta(a, b) distribution).</summary>
    public static double InverseRegularized(double a, double b, double p)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(a);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(b);
        if (double.IsNaN(p) || p < 0 || p > 1)
        {
            throw new ArgumentOutOfRangeException(nameof(p), p, "p must be in [0, 1].");
        }

        if (p is 0 or 1)
        {
            return p;
        }

        double lo = 0, hi = 1;
        for (var i = 0; i < 200 && hi - lo > 1e-15; i++)
        {
            var mid = 0.5 * (lo + hi);
            if (Regularized(a, b, mid) < p)
            {
                lo = mid;
            }
            else
            {
                hi = mid;
            }
        }

        return 0.5 * (lo + hi);
    }

    private static double ContinuedFraction(double a, double b, double x)
    {
        // 1 / (1 + d1 / (1 + d2 / (1 + …))) with d_{2m+1} = −(a+m)(a+b+m)x / ((a+2m)(a+2m+1)) and
        // d_{2m} = m(b−m)x / ((a+2m−1)(a+2m)).
        const double tiny = 1e-300;
        var c = 1.0;
        var d = 1 - ((a + b) * x / (a + 1));
        d = Math.Abs(d) < tiny ? tiny : d;
        d = 1 / d;
        var h = d;
        for (var m = 1; m < 1000; m++)
        {
            var m2 = 2 * m;
            var even = m * (b - m) * x / ((a + m2 - 1) * (a + m2));
            d = 1 + (even * d);
            d = Math.Abs(d) < tiny ? tiny : d;
            c = 1 + (even / c);
            c = Math.Abs(c) < tiny ? tiny : c;
            d = 1 / d;
            h *= d * c;
            var odd = -(a + m) * (a + b + m) * x / ((a + m2) * (a + m2 + 1));
            d = 1 + (odd * d);
            d = Math.Abs(d) < tiny ? tiny : d;
            c = 1 + (odd / c);
            c = Math.Abs(c) < tiny ? tiny : c;
            d = 1 / d;
            var delta = d * c;
            h *= delta;
            if (Math.Abs(delta - 1) < 1e-16)
            {
                break;
            }
        }

        return h;
    }
}
