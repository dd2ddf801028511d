namespace PumpFleet.Domain.Statistics;

/// <summary>
/// The exact sign test and the distribution-free confidence interval for a median. Both need nothing of the
/// distribution but continuity, so a few wild values (a pocket fill, a misread syringe) cannot move them.
/// </summary>
public static class SignTest
{
    /// <summary>
    /// P(X ≥ k) for X ~ Binomial(n, ½): the one-sided p-value of k "successes" out of n when each is at most an even
    /// chance. Summed in log space away from the centre, so it is exact for small n and does not underflow for large n.
    /// </summary>
    public static double UpperTail(int k, int n)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(n);
        if (k <= 0)
        {
            return 1;
        }

        if (k > n)
        {
            return 0;
        }

        // Terms shrink away from n/2: sum the tail that does not contain the centre, and complement if needed.
        return 2 * k > n ? TailFrom(k, n, +1) : 1 - TailFrom(k - 1, n, -1);
    }

    /// <summary>
    /// The rank r of the order statistics (x₍ᵣ₎, x₍ₙ₊₁₋ᵣ₎) that bound the median with two-sided confidence at least
    /// 1 − <paramref name="alpha"/>: the largest r with P(X ≤ r − 1) ≤ α/2. Zero when n is too small for that level.
    /// </summary>
    public static int MedianBoundRank(int n, double alpha)
    {
        var r = 0;
        while (r + 1 <= (n + 1) / 2 && 1 - UpperTail(r + 1, n) <= alpha / 2)
        {
            r++;
        }

        return r;
    }

    /// <summary>The median of values (the mean of the middle two for an even count).</summary>
    public static double Median(IReadOnlyList<double> sorted)
    {
        ArgumentNullException.ThrowIfNull(sorted);
        if (sorted.Count == 0)
        {
            throw new ArgumentException("The median of no values is undefined.", nameof(sorted));
        }

        var mid = sorted.Count / 2;
        return sorted.Count % 2 == 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
    }

    private static double TailFrom(int start, int n, int step)
    {
        var logHalfN = n * Math.Log(0.5);
        var logNFact = Gamma.LogGamma(n + 1);
        double sum = 0;
        for (var i = start; i >= 0 && i <= n; i += step)
        {
            var term = Math.Exp(logNFact - Gamma.LogGamma(i + 1) - Gamma.LogGamma(n - i + 1) + logHalfN);
            sum += term;
            if (term < sum * 1e-17)
            {
                break;
            }
        }

        return Math.Min(1, sum);
    }
}
