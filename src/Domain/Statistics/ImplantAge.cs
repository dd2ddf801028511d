namespace PumpFleet.Domain.Statistics;

/// <summary>
/// Implant-age bands of the surveillance cohorts, chosen after the failure facts of the domain notes (§3:
/// over-infusion from 5 months, battery events at 45–78 months, stall rising with time since implant), and the split of
/// a pump's follow-up across them: a pump followed from 4 to 8 months after implant spends two months in
/// "0-6 months" and two in "6-12 months", and its pump-days (the rate's denominator) go to each band accordingly.
/// Time before the implant (a trial pump, or an implant date not known) is "not implanted".
/// </summary>
public static class ImplantAge
{
    /// <summary>Bands, youngest first, then <c>not implanted</c>.</summary>
    public static readonly IReadOnlyList<string> Bands = ["0-6 months", "6-12 months", "1-2 years", "2-5 years", "5+ years", "not implanted"];

    /// <summary>The band of time before implant, or of a pump with no implant date.</summary>
    public const string NotImplanted = "not implanted";

    /// <summary>Where each age band starts, in days since implant (a year is 365.25 days); the last is open-ended.</summary>
    public static readonly IReadOnlyList<double> BandStartDays = [0, 182.625, 365.25, 730.5, 1826.25];

    /// <summary>The band at <paramref name="at"/> of a pump implanted at <paramref name="implantedAt"/> (null: none).</summary>
    public static string BandAt(DateTimeOffset? implantedAt, DateTimeOffset at)
    {
        if (implantedAt is not { } i || at < i)
        {
            return NotImplanted;
        }

        var days = (at - i).TotalDays;
        for (var b = BandStartDays.Count - 1; b >= 0; b--)
        {
            if (days >= BandStartDays[b])
            {
                return Bands[b];
            }
        }

        return Bands[0];
    }

    /// <summary>
    /// The follow-up [<paramref name="from"/>, <paramref name="to"/>] split into days per band (bands with no time left
    /// out, youngest first, <c>not implanted</c> first when the follow-up starts before the implant). The days add up to
    /// the whole follow-up.
    /// </summary>
    public static IReadOnlyList<(string Band, double Days)> Split(DateTimeOffset? implantedAt, DateTimeOffset from, DateTimeOffset to)
    {
        if (to <= from)
        {
            return [];
        }

        if (implantedAt is not { } i)
        {
            return [(NotImplanted, (to - from).TotalDays)];
        }

        var parts = new List<(string, double)>();
        if (from < i)
        {
            parts.Add((NotImplanted, ((to < i ? to : i) - from).TotalDays));
        }

        for (var b = 0; b < BandStartDays.Count; b++)
        {
            var start = i.AddDays(BandStartDays[b]);
            var end = b + 1 < BandStartDays.Count ? i.AddDays(BandStartDays[b + 1]) : DateTimeOffset.MaxValue;
            var lo = from > start ? from : start;
            var hi = to < end ? to : end;
            if (hi > lo)
            {
                parts.Add((Bands[b], (hi - lo).TotalDays));
            }
        }

        return parts;
    }
}
