namespace PumpFleet.Domain.Drugs;

/// <summary>
/// A labelled daily-dose limit for one drug, in mcg/day, with the severity a prescription above it gets and the
/// source it comes from (docs/detection.md, "dose-above-limit"; sources by number in its "Sources").
/// </summary>
public sealed record DoseLimit(string Drug, double MaxMcgPerDay, string Severity, string Basis);

/// <summary>The labelled limits the platform checks. Only figures §1.5 gives, each with its source.</summary>
public static class DoseLimits
{
    /// <summary>Ziconotide: maximum 19.2 mcg/day (0.8 mcg/h) [43] (Prialt label).</summary>
    public static readonly DoseLimit Ziconotide = new(DrugVocabulary.Ziconotide, 19.2, "critical",
        "Prialt label: maximum 19.2 mcg/day (0.8 mcg/h)");

    /// <summary>Baclofen: maintenance for spinal and cerebral origin both capped at 1000 mcg/day [46][47] (Lioresal/Gablofen IT).</summary>
    public static readonly DoseLimit Baclofen = new(DrugVocabulary.Baclofen, 1000, "critical",
        "Lioresal/Gablofen intrathecal label: maintenance capped at 1000 mcg/day");

    /// <summary>
    /// Morphine (Infumorph): opioid-tolerant 1–10 mg/day, caution above 20 mg/day [41][42]. A caution, not a hard
    /// maximum, so a prescription above it is a warning.
    /// </summary>
    public static readonly DoseLimit Morphine = new(DrugVocabulary.Morphine, 20_000, "warning",
        "Infumorph label: caution above 20 mg/day intrathecal");

    /// <summary>Every limit, by generic name. Hydromorphone, bupivacaine, clonidine, fentanyl: no labelled intrathecal limit in the sources (off-label, [68]).</summary>
    public static IReadOnlyDictionary<string, DoseLimit> ByDrug { get; } = new Dictionary<string, DoseLimit>(StringComparer.Ordinal)
    {
        [Ziconotide.Drug] = Ziconotide,
        [Baclofen.Drug] = Baclofen,
        [Morphine.Drug] = Morphine,
    };

    /// <summary>Ziconotide titration: increase by at most 2.4 mcg/day per step [43].</summary>
    public const double ZiconotideMaxStepMcgPerDay = 2.4;

    /// <summary>Ziconotide titration: no more than 2–3 increases a week [43]; the platform allows the upper figure, 3.</summary>
    public const int ZiconotideMaxIncreasesPerWeek = 3;

    /// <summary>Ziconotide starting dose: at most 2.4 mcg/day (0.1 mcg/h) [43].</summary>
    public const double ZiconotideMaxStartMcgPerDay = 2.4;
}
