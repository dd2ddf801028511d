namespace PumpFleet.Domain.Drugs;

/// <summary>
/// Ziconotide stability rules for SynchroMed II (§1.5 [44]): the drug is lost to adsorption and dilution
/// in a naive pump, so the <b>first refill is due within 14 days</b>; after that at least every <b>40 days</b> when
/// diluted or <b>84 days</b> undiluted. Undiluted means a supplied strength (25 or 100 mcg/mL [43]).
/// </summary>
public static class ZiconotideRefillRules
{
    public static readonly TimeSpan FirstRefillWithin = TimeSpan.FromDays(14);
    public static readonly TimeSpan DilutedInterval = TimeSpan.FromDays(40);
    public static readonly TimeSpan UndilutedInterval = TimeSpan.FromDays(84);

    /// <summary>Supplied Prialt strengths, mcg/mL [43].</summary>
    public static readonly IReadOnlyList<double> SuppliedStrengthsMcgPerMl = [25, 100];

    /// <summary>True when the concentration is a supplied strength (used undiluted).</summary>
    public static bool IsUndiluted(double concentrationMcgPerMl) =>
        SuppliedStrengthsMcgPerMl.Any(s => ConcentrationUnits.Same(s, concentrationMcgPerMl));

    /// <summary>
    /// When the next refill is due by the stability rules, from the last ziconotide fill: 14 days after the first fill
    /// of a pump, then 40 or 84 days by dilution. An unknown concentration gets the shorter (diluted) interval.
    /// </summary>
    public static DateTimeOffset? DueBy(DateTimeOffset lastFillAt, int ziconotideFills, double? concentrationMcgPerMl)
    {
        if (ziconotideFills <= 1)
        {
            return lastFillAt + FirstRefillWithin;
        }

        return concentrationMcgPerMl is { } c
            ? lastFillAt + (IsUndiluted(c) ? UndilutedInterval : DilutedInterval)
            : lastFillAt + DilutedInterval;   // unknown strength: the shorter, safer interval
    }
}
