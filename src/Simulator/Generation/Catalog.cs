using PumpFleet.Contracts.Events;

namespace PumpFleet.Simulator.Generation;

/// <summary>
/// The fleet's models and drugs. Reservoirs, concentrations and dose ranges follow docs/simulator.md, which cites
/// docs/simulator.md (sources of the figures).
/// </summary>
public static class Catalog
{
    /// <summary>SynchroMed-like (SM2) and Prometra-like (PM2) pumps in 20 and 40 mL sizes (§1.1, §1.2).</summary>
    public static readonly IReadOnlyList<PumpModel> Models =
    [
        new("SM2-20", 20, ["4.1.0", "4.2.1", "4.3.0"], ["L2201", "L2291", "L2310"]),
        new("SM2-40", 40, ["4.1.0", "4.2.1", "4.3.0"], ["L2202", "L2292", "L2311"]),
        new("PM2-20", 20, ["2.0.3", "2.1.0"], ["P1827", "P1902"]),
        new("PM2-40", 40, ["2.0.3", "2.1.0"], ["P1828", "P1903"]),
    ];

    /// <summary>
    /// Morphine 10/25 mg/mL, 1–10 mg/day; ziconotide 25/100 mcg/mL up to 19.2 mcg/day; baclofen 500/1000/2000 mcg/mL,
    /// 300–800 mcg/day (§1.5). Hydromorphone is used off-label; its figures are illustrative, not sourced.
    /// </summary>
    public static readonly DrugSpec Morphine = new("morphine", "mg/mL", [10, 25], 1, 10, true);

    /// <summary>Hydromorphone (off-label, illustrative 2/10 mg/mL, 0.5–4 mg/day).</summary>
    public static readonly DrugSpec Hydromorphone = new("hydromorphone", "mg/mL", [2, 10], 0.5, 4, true);

    /// <summary>Ziconotide (no patient bolus; slow titration).</summary>
    public static readonly DrugSpec Ziconotide = new("ziconotide", "mcg/mL", [25, 100], 2.4, 19.2, false);

    /// <summary>Baclofen for spasticity (no patient bolus, §1.2 PTC restriction).</summary>
    public static readonly DrugSpec Baclofen = new("baclofen", "mcg/mL", [500, 1000, 2000], 300, 800, false);

    /// <summary>Indications weighted after the registry mix: non-malignant pain 58.1 %, spasticity 21.6 %, malignant pain 18.5 % (§1.5).</summary>
    public static readonly IReadOnlyList<(string Item, double Weight)> Indications =
    [
        ("chronic-back-pain", 20), ("failed-back-surgery", 18), ("neuropathy", 8), ("crps", 5), ("neck-pain", 3),
        ("postherpetic-neuralgia", 2), ("other", 2), ("spasticity", 21.6), ("cancer-pain", 18.5),
    ];

    /// <summary>Lowest and highest programmed rates used, mL/day.</summary>
    public const double MinRateMlPerDay = 0.05;

    /// <summary>Highest programmed rate, mL/day.</summary>
    public const double MaxRateMlPerDay = 1.5;

    /// <summary>Drug for an indication.</summary>
    public static DrugSpec DrugFor(string indication, Random r) => indication switch
    {
        "spasticity" => Baclofen,
        "cancer-pain" => r.PickWeighted<DrugSpec>([(Morphine, 70), (Hydromorphone, 30)]),
        _ => r.PickWeighted<DrugSpec>([(Morphine, 55), (Hydromorphone, 25), (Ziconotide, 20)]),
    };

    /// <summary>The concentration record of a drug.</summary>
    public static Concentration ConcentrationOf(DrugSpec drug, double value) => new() { Value = value, Unit = drug.Unit };
}
