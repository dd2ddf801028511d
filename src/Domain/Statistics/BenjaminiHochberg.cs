namespace PumpFleet.Domain.Statistics;

/// <summary>
/// Benjamini–Hochberg step-up control of the false discovery rate across m tests: sort the p-values, find the largest
/// rank k with p(k) ≤ k/m · q, and reject the k smallest. Used for cohort signals, where ~30 cohorts × 3 measures at
/// an uncorrected α = 0.05 would give about one chance signal per run in a fleet with no real difference.
/// </summary>
public static class BenjaminiHochberg
{
    /// <summary>The method's name as shown in evidence, the API and docs.</summary>
    public const string MethodName = "Benjamini–Hochberg";

    /// <summary>
    /// BH-adjusted p-values (q-values), in the input order: q(i) = min over ranks j ≥ rank(i) of p(j)·m/j, capped at 1.
    /// A test is rejected at FDR level q exactly when its adjusted value is ≤ q.
    /// </summary>
    public static double[] Adjust(IReadOnlyList<double> pValues)
    {
        ArgumentNullException.ThrowIfNull(pValues);
        var m = pValues.Count;
        var order = Enumerable.Range(0, m).OrderBy(i => pValues[i]).ToArray();
        var adjusted = new double[m];
        var running = 1.0;
        for (var rank = m; rank >= 1; rank--)
        {
            var i = order[rank - 1];
            var p = pValues[i];
            if (double.IsNaN(p) || p < 0 || p > 1)
            {
                throw new ArgumentOutOfRangeException(nameof(pValues), p, "A p-value must lie in [0, 1].");
            }

            running = Math.Min(running, p * m / rank);
            adjusted[i] = running;
        }

        return adjusted;
    }
}
