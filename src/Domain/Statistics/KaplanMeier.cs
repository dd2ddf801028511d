namespace PumpFleet.Domain.Statistics;

/// <summary>Follow-up ending at one time: how many reached the end point then, and how many were censored then.</summary>
/// <param name="Time">Time since the origin (days since implant, for devices).</param>
/// <param name="Events">Subjects whose end point happened at this time.</param>
/// <param name="Censored">Subjects last seen at this time without the end point.</param>
public readonly record struct SurvivalObservation(double Time, long Events, long Censored);

/// <summary>One step of a Kaplan–Meier curve, at a time at which at least one end point happened.</summary>
/// <param name="Time">The event time.</param>
/// <param name="AtRisk">Subjects still followed just before it.</param>
/// <param name="Events">End points at it.</param>
/// <param name="Censored">Subjects censored at it (counted at risk for it: censoring is taken to follow events that tie).</param>
/// <param name="Survival">S(t), the product-limit estimate.</param>
/// <param name="StandardError">Greenwood's standard error of S(t).</param>
/// <param name="Lower">Lower bound of the pointwise band (log-log).</param>
/// <param name="Upper">Upper bound of the pointwise band (log-log).</param>
public sealed record SurvivalStep(double Time, long AtRisk, long Events, long Censored, double Survival, double StandardError, double Lower, double Upper);

/// <summary>A Kaplan–Meier curve: its steps, and what it was estimated from.</summary>
/// <param name="Steps">One per distinct event time, ascending; S = 1 before the first.</param>
/// <param name="Subjects">Subjects followed.</param>
/// <param name="Events">End points observed.</param>
/// <param name="Censored">Subjects censored.</param>
/// <param name="LastTime">The longest follow-up (event or censoring): the curve says nothing beyond it.</param>
public sealed record SurvivalCurve(IReadOnlyList<SurvivalStep> Steps, long Subjects, long Events, long Censored, double LastTime);

/// <summary>
/// The Kaplan–Meier (product-limit) estimator of device survival with Greenwood's variance and a pointwise
/// log-log band, the form registries report device survival in (domain notes §7.3): S(t) = Π (1 − dᵢ/nᵢ) over event
/// times tᵢ ≤ t; Var S = S² Σ dᵢ / (nᵢ(nᵢ − dᵢ)); the band is S^exp(±z·σ/ln S) with σ² = Σ dᵢ/(nᵢ(nᵢ − dᵢ)), which
/// stays inside [0, 1] where the plain band (S ± z·SE) does not.
/// </summary>
public static class KaplanMeier
{
    /// <summary>The method's name as the API and the page show it.</summary>
    public const string MethodName = "Kaplan–Meier with Greenwood variance and a log-log pointwise band";

    /// <summary>Estimates the curve from observations (any order; equal times are merged).</summary>
    public static SurvivalCurve Estimate(IEnumerable<SurvivalObservation> observations, double confidence = 0.95)
    {
        ArgumentNullException.ThrowIfNull(observations);
        if (confidence is <= 0 or >= 1)
        {
            throw new ArgumentOutOfRangeException(nameof(confidence), confidence, "Confidence must be in (0, 1).");
        }

        var byTime = new SortedDictionary<double, (long Events, long Censored)>();
        foreach (var o in observations)
        {
            if (double.IsNaN(o.Time) || o.Time < 0 || o.Events < 0 || o.Censored < 0)
            {
                throw new ArgumentOutOfRangeException(nameof(observations), o, "Times and counts must not be negative.");
            }

            byTime[o.Time] = byTime.TryGetValue(o.Time, out var x) ? (x.Events + o.Events, x.Censored + o.Censored) : (o.Events, o.Censored);
        }

        var z = NormalQuantile(1 - ((1 - confidence) / 2));
        var atRisk = byTime.Values.Sum(v => v.Events + v.Censored);
        var subjects = atRisk;
        long events = 0, censored = 0;
        double survival = 1, greenwood = 0, last = 0;
        var steps = new List<SurvivalStep>();
        foreach (var (time, (d, c)) in byTime)
        {
            events += d;
            censored += c;
            if (d + c > 0)
            {
                last = time;
            }

            if (d > 0)
            {
                survival *= 1 - ((double)d / atRisk);
                greenwood = d == atRisk ? double.PositiveInfinity : greenwood + ((double)d / (atRisk * (double)(atRisk - d)));
                var se = double.IsInfinity(greenwood) ? 0 : survival * Math.Sqrt(greenwood);
                var (lower, upper) = Band(survival, greenwood, z);
                steps.Add(new SurvivalStep(time, atRisk, d, c, survival, se, lower, upper));
            }

            atRisk -= d + c;
        }

        return new SurvivalCurve(steps, subjects, events, censored, last);
    }

    private static (double Lower, double Upper) Band(double s, double greenwood, double z)
    {
        if (s <= 0 || double.IsInfinity(greenwood))
        {
            return (0, 0);
        }

        if (s >= 1 || greenwood == 0)
        {
            return (s, s);
        }

        // log(−log S) has standard error σ/|log S|; transforming its symmetric interval back keeps the band in (0, 1).
        var w = z * Math.Sqrt(greenwood) / Math.Log(s);
        return (Math.Pow(s, Math.Exp(-w)), Math.Pow(s, Math.Exp(w)));
    }

    /// <summary>The standard normal quantile (Acklam's rational approximation refined by one Halley step; error &lt; 1e-12).</summary>
    public static double NormalQuantile(double p)
    {
        if (p is <= 0 or >= 1 || double.IsNaN(p))
        {
            throw new ArgumentOutOfRangeException(nameof(p), p, "p must be in (0, 1).");
        }

        double[] a = [-3.969683028665376e+01, 2.209460984245205e+02, -2.759285104469687e+02, 1.383577518672690e+02, -3.066479806614716e+01, 2.506628277459239e+00];
        double[] b = [-5.447609879822406e+01, 1.615858368580409e+02, -1.556989798598866e+02, 6.680131188771972e+01, -1.328068155288572e+01];
        double[] c = [-7.784894002430293e-03, -3.223964580411365e-01, -2.400758277161838e+00, -2.549732539343734e+00, 4.374664141464968e+00, 2.938163982698783e+00];
        double[] d = [7.784695709041462e-03, 3.224671290700398e-01, 2.445134137142996e+00, 3.754408661907416e+00];
        double x;
        if (p < 0.02425)
        {
            var q = Math.Sqrt(-2 * Math.Log(p));
            x = (((((((((c[0] * q) + c[1]) * q) + c[2]) * q) + c[3]) * q) + c[4]) * q + c[5]) / ((((((((d[0] * q) + d[1]) * q) + d[2]) * q) + d[3]) * q) + 1);
        }
        else if (p > 1 - 0.02425)
        {
            var q = Math.Sqrt(-2 * Math.Log(1 - p));
            x = -(((((((((c[0] * q) + c[1]) * q) + c[2]) * q) + c[3]) * q) + c[4]) * q + c[5]) / ((((((((d[0] * q) + d[1]) * q) + d[2]) * q) + d[3]) * q) + 1);
        }
        else
        {
            var q = p - 0.5;
            var r = q * q;
            x = (((((((((a[0] * r) + a[1]) * r) + a[2]) * r) + a[3]) * r) + a[4]) * r + a[5]) * q /
                (((((((((b[0] * r) + b[1]) * r) + b[2]) * r) + b[3]) * r) + b[4]) * r + 1);
        }

        // One Halley step on Φ(x) − p, with Φ from the regularised gamma: Φ(x) = ½(1 + sign·P(½, x²/2)).
        var cdf = 0.5 * (1 + (Math.Sign(x) * Gamma.LowerRegularized(0.5, x * x / 2)));
        var u = (cdf - p) * Math.Sqrt(2 * Math.PI) * Math.Exp(x * x / 2);
        return x - (u / (1 + (x * u / 2)));
    }
}
