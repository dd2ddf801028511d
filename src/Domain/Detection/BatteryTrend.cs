using PumpFleet.Domain.Pumps;

namespace PumpFleet.Domain.Detection;

/// <summary>
/// Exponentially weighted least squares of <c>batteryPct</c> over event time (days), so the trend follows the
/// recent discharge slope (a battery falls faster near its end) without storing the series.
/// </summary>
public sealed class BatteryTrend
{
    /// <summary>Time constant of the forgetting, in days: two months of daily reports dominate the fit.</summary>
    public const double TimeConstantDays = 60;

    /// <summary>Origin of the time axis (first report), for numerical conditioning.</summary>
    public DateTimeOffset? Origin { get => _origin; set => _origin = value; }

    private OptionalTime _origin;
    public DateTimeOffset? LastAt { get => _lastAt; set => _lastAt = value; }

    private OptionalTime _lastAt;
    public long Reports { get; set; }
    public double Sw { get; set; }
    public double St { get; set; }
    public double Sy { get; set; }
    public double Stt { get; set; }
    public double Sty { get; set; }

    /// <summary>A deep copy (every member is a value), for the re-fold checkpoints.</summary>
    public BatteryTrend Clone() => (BatteryTrend)MemberwiseClone();

    /// <summary>Folds one trusted report; older-than-last reports are ignored (time must move forward).</summary>
    public void OnReport(DateTimeOffset at, double pct)
    {
        if (LastAt is { } last && at <= last)
        {
            return;
        }

        Origin ??= at;
        if (LastAt is { } prev)
        {
            var decay = Math.Exp(-(at - prev).TotalDays / TimeConstantDays);
            Sw *= decay;
            St *= decay;
            Sy *= decay;
            Stt *= decay;
            Sty *= decay;
        }

        var t = (at - Origin.Value).TotalDays;
        Sw += 1;
        St += t;
        Sy += pct;
        Stt += t * t;
        Sty += t * pct;
        LastAt = at;
        Reports++;
    }

    /// <summary>Slope (%/day) and the fitted level at the last report, or null while the fit is degenerate.</summary>
    public (double SlopePerDay, double LevelPct)? Fit()
    {
        var denominator = (Sw * Stt) - (St * St);
        if (LastAt is null || Origin is null || Sw < 2 || denominator <= 1e-9 * Sw * Sw)
        {
            return null;   // one report, or all at one instant: no trend (zero variance of time)
        }

        var slope = ((Sw * Sty) - (St * Sy)) / denominator;
        var intercept = (Sy - (slope * St)) / Sw;
        var t = (LastAt.Value - Origin.Value).TotalDays;
        return (slope, intercept + (slope * t));
    }
}
