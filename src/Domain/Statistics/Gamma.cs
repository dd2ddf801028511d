namespace PumpFleet.Domain.Statistics;

/// <summary>
/// The regularised incomplete gamma function and its inverse, enough for exact Poisson intervals
/// (chi-square quantiles are gamma quantiles: χ²(p; 2k)/2 = Γ⁻¹(p; k)). Series and Lentz continued fraction as in
/// the classical treatment (Abramowitz and Stegun 6.5.29 and 6.5.31), Lanczos for ln Γ, and a bracketing bisection for
/// the inverse: slower than Newton but it cannot diverge, and 200 halvings reach double precision.
/// </summary>
public static class Gamma
{
    private static readonly double[] Lanczos =
    [
        0.99999999999980993, 676.5203681218851, -1259.1392167224028, 771.32342877765313,
        -176.61502916214059, 12.507343278686905, -0.13857109526572012, 9.9843695780195716e-6, 1.5056327351493116e-7,
    ];

    /// <summary>ln Γ(x) for x &gt; 0 (Lanczos, g = 7, n = 9; relative error about 1e-15).</summary>
    public static double LogGamma(double x)
    {
        if (x < 0.5)
        {
            // Reflection keeps the approximation in its accurate range.
            return Math.Log(Math.PI / Math.Sin(Math.PI * x)) - LogGamma(1 - x);
        }

        x -= 1;
        var a = Lanczos[0];
        var t = x + 7.5;
        for (var i = 1; i < 9; i++)
        {
            a += Lanczos[i] / (x + i);
        }

        return 0.5 * Math.Log(2 * Math.PI) + ((x + 0.5) * Math.Log(t)) - t + Math.Log(a);
    }

    /// <summary>The regularised lower incomplete gamma function P(a, x).</summary>
    public static double LowerRegularized(double a, double x)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(a);
        if (x <= 0)
        {
            return 0;
        }

        if (x < a + 1)
        {
            // Series: P = e^-x x^a / Γ(a+1) Σ x^n / ((a+1)…(a+n)).
            var sum = 1.0 / a;
            var term = sum;
            for (var n = 1; n < 1000; n++)
            {
                term *= x / (a + n);
                sum += term;
                if (Math.Abs(term) < Math.Abs(sum) * 1e-16)
                {
                    break;
                }
            }

            return Math.Min(1, sum * Math.Exp((-x) + (a * Math.Log(x)) - LogGamma(a)));
        }

        // Continued fraction for Q = 1 - P (modified Lentz).
        const double tiny = 1e-300;
        var b = x + 1 - a;
        var c = 1 / tiny;
        var d = 1 / b;
        var h = d;
        for (var i = 1; i < 1000; i++)
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
            if (Math.Abs(delta - 1) < 1e-16)
            {
                break;
            }
        }

        var q = Math.Exp((-x) + (a * Math.Log(x)) - LogGamma(a)) * h;
        return Math.Max(0, 1 - q);
    }

    /// <summary>The x with P(a, x) = p (the p-quantile of a Gamma(a, 1) distribution).</summary>
    public static double InverseLowerRegularized(double a, double p)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(a);
        if (p is < 0 or > 1 || double.IsNaN(p))
        {
            throw new ArgumentOutOfRangeException(nameof(p), p, "p must be in [0, 1].");
        }

        if (p == 0)
        {
            return 0;
        }

        if (p == 1)
        {
            return double.PositiveInfinity;
        }

        double lo = 0, hi = Math.Max(1, a);
        while (LowerRegularized(a, hi) < p)
        {
            lo = hi;
            hi *= 2;
        }

        for (var i = 0; i < 200 && hi - lo > 1e-14 * hi; i++)
        {
            var mid = 0.5 * (lo + hi);
            if (LowerRegularized(a, mid) < p)
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
}
