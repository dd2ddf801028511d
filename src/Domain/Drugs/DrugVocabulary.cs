using System.Collections.Frozen;

namespace PumpFleet.Domain.Drugs;

/// <summary>
/// The drug vocabulary: maps the free-text drug name a pump or programmer sends (any case, brand or generic, single
/// drug or admixture) to canonical generic names. Brand names after §1.5 (Infumorph, Prialt, Lioresal,
/// Gablofen) and the common US brands of the off-label drugs named in [68]. A name not in the vocabulary is kept,
/// lower-cased, as an unknown component: an unknown drug is an explicit outcome, never silently a known one.
/// </summary>
public static class DrugVocabulary
{
    public const string Morphine = "morphine";
    public const string Ziconotide = "ziconotide";
    public const string Baclofen = "baclofen";
    public const string Hydromorphone = "hydromorphone";
    public const string Bupivacaine = "bupivacaine";
    public const string Fentanyl = "fentanyl";
    public const string Sufentanil = "sufentanil";
    public const string Clonidine = "clonidine";

    // Generic and brand names → generic. Keys are compared after lower-casing and trimming.
    private static readonly FrozenDictionary<string, string> Names = new Dictionary<string, string>(StringComparer.Ordinal)
    {
        [Morphine] = Morphine, ["morphine sulfate"] = Morphine, ["morphine sulphate"] = Morphine,
        ["infumorph"] = Morphine, ["duramorph"] = Morphine, ["mitigo"] = Morphine,
        [Ziconotide] = Ziconotide, ["prialt"] = Ziconotide,
        [Baclofen] = Baclofen, ["lioresal"] = Baclofen, ["lioresal intrathecal"] = Baclofen, ["gablofen"] = Baclofen,
        [Hydromorphone] = Hydromorphone, ["dilaudid"] = Hydromorphone,
        [Bupivacaine] = Bupivacaine, ["marcaine"] = Bupivacaine, ["sensorcaine"] = Bupivacaine,
        [Fentanyl] = Fentanyl, ["sublimaze"] = Fentanyl,
        [Sufentanil] = Sufentanil, ["sufenta"] = Sufentanil,
        [Clonidine] = Clonidine, ["duraclon"] = Clonidine,
    }.ToFrozenDictionary(StringComparer.Ordinal);

    // Admixture separators: "morphine + bupivacaine", "morphine/bupivacaine", "morphine & clonidine", "a, b", "a with b".
    private static readonly string[] Separators = ["+", "/", "&", ",", ";", " with ", " and "];

    /// <summary>The canonical generic names the vocabulary knows.</summary>
    public static IReadOnlyCollection<string> Known { get; } = FrozenSet.Create(StringComparer.Ordinal, [.. Names.Values]);

    /// <summary>Normalises a drug name; never throws. Null or blank gives an empty, unknown drug.</summary>
    public static DrugName Normalize(string? text)
    {
        if (string.IsNullOrWhiteSpace(text))
        {
            return new DrugName([], Unknown: true, Raw: text ?? "");
        }

        var parts = new List<string> { text.Trim().ToLowerInvariant() };
        foreach (var sep in Separators)
        {
            parts = [.. parts.SelectMany(p => p.Split(sep, StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries))];
        }

        var components = new List<string>();
        var unknown = false;
        foreach (var p in parts)
        {
            var name = Collapse(p);
            if (Names.TryGetValue(name, out var generic))
            {
                name = generic;
            }
            else if (Names.TryGetValue(StripForm(name), out var bare))
            {
                name = bare;
            }
            else
            {
                unknown = true;
            }

            if (name.Length > 0 && !components.Contains(name, StringComparer.Ordinal))
            {
                components.Add(name);
            }
        }

        return new DrugName(components, unknown || components.Count == 0, text);
    }

    // Internal whitespace runs become one space ("morphine   sulfate").
    private static string Collapse(string s) => string.Join(' ', s.Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries));

    // "baclofen intrathecal", "morphine pf", "prialt injection": drop a trailing form word so the name is found.
    private static string StripForm(string s)
    {
        string[] forms = [" pf", " preservative-free", " preservative free", " intrathecal", " injection", " it", " hcl", " hydrochloride"];
        foreach (var f in forms)
        {
            if (s.EndsWith(f, StringComparison.Ordinal))
            {
                return StripForm(s[..^f.Length].TrimEnd());
            }
        }

        return s;
    }
}

/// <summary>
/// A normalised drug: its components as canonical generic names in the order given (the first is the primary drug,
/// the one the protocol's single <c>concentration</c> refers to), and whether any component is not in the vocabulary.
/// </summary>
public sealed record DrugName(IReadOnlyList<string> Components, bool Unknown, string Raw)
{
    /// <summary>The primary (first) component, or null.</summary>
    public string? Primary => Components.Count > 0 ? Components[0] : null;

    /// <summary>An admixture of two or more drugs.</summary>
    public bool IsAdmixture => Components.Count > 1;

    /// <summary>True when the drug is or contains <paramref name="generic"/>.</summary>
    public bool Contains(string generic) => Components.Contains(generic, StringComparer.Ordinal);

    /// <summary>Same drugs (order-insensitive: "bupivacaine + morphine" is the admixture "morphine + bupivacaine").</summary>
    public bool SameDrugsAs(DrugName other) =>
        Components.Count == other.Components.Count && Components.All(other.Contains);

    /// <summary>Canonical text: the components joined with " + ".</summary>
    public string Canonical => string.Join(" + ", Components);

    /// <summary>
    /// Baclofen alone or in an admixture: its withdrawal can progress over 24–72 h to rhabdomyolysis, organ failure and
    /// death (§0 item 8, §3.7), so anomalies that stop or starve delivery are critical.
    /// </summary>
    public bool WithdrawalCritical => Contains(DrugVocabulary.Baclofen);

    /// <summary>Whether a free-text drug name is (or contains) baclofen.</summary>
    public static bool IsWithdrawalCritical(string? drug) => DrugVocabulary.Normalize(drug).WithdrawalCritical;

    public override string ToString() => Unknown ? $"{Canonical} (unknown)" : Canonical;
}
