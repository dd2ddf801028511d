using System.Globalization;
using PumpFleet.Contracts.Events;
using PumpFleet.Domain.Drugs;
using PumpFleet.Domain.Pumps;

namespace PumpFleet.Domain.Detection;

/// <summary>
/// The refill-safety detectors (docs/detection.md): <c>refill-mismatch</c> (what is in the reservoir against the
/// prescription the pump runs) and <c>dose-above-limit</c> (the daily dose against the labelled maxima, and the
/// ziconotide titration rule). Pure functions of the folded state, like <see cref="Detectors"/>.
/// </summary>
public static class RefillSafetyDetectors
{
    private static readonly CultureInfo Inv = CultureInfo.InvariantCulture;

    /// <summary>
    /// <c>refill-mismatch</c> (critical): the drug or concentration last filled differs from the prescription in
    /// force, compared by normalised drug (brand, case, admixture order) and by concentration in mcg/mL. A wrong
    /// concentration is a known cause of fatal overdose (§3.5, medication administration errors [73]).
    /// Judged after the batch, so a refill and its reprogramming sent together are compared with each other. Opens
    /// once per refill or prescription change; resolved when a later refill or prescription makes them agree.
    /// </summary>
    public static Verdict RefillMismatch(PumpState state)
    {
        const string kind = AnomalyKinds.RefillMismatch;
        var s = state.Detectors.Safety;
        var rx = state.Prescription;
        if (s.LastRefillAt is not { } refillAt || s.RefillDrug is null || rx is null)
        {
            return Verdict.None(kind);
        }

        var changedAt = s.LastPrescriptionAt is { } pAt && pAt > refillAt ? pAt : refillAt;
        var filled = DrugVocabulary.Normalize(s.RefillDrug);
        var prescribed = DrugVocabulary.Normalize(rx.Drug);
        var filledConc = new Concentration { Value = s.RefillConcentrationValue ?? 0, Unit = s.RefillConcentrationUnit ?? "" };
        var filledMcg = ConcentrationUnits.ToMcgPerMl(filledConc);
        var prescribedMcg = ConcentrationUnits.ToMcgPerMl(rx.Concentration);

        // Unknown drugs are compared by their normalised text; they can match only themselves.
        var drugMismatch = !filled.SameDrugsAs(prescribed);
        var concMismatch = filledMcg is { } f && prescribedMcg is { } p
            ? !ConcentrationUnits.Same(f, p)
            : !(filledConc.Value == rx.Concentration.Value && string.Equals(filledConc.Unit.Trim(), rx.Concentration.Unit.Trim(), StringComparison.OrdinalIgnoreCase));
        var open = state.AnomalyOfKind(kind);
        if (!drugMismatch && !concMismatch)
        {
            return open is not null && changedAt > open.DetectedAt ? Verdict.Clear(kind) : Verdict.None(kind);
        }

        if (state.Detectors.LastOpened(kind) is { } last && last >= changedAt)
        {
            return Verdict.None(kind);
        }

        var volume = ProgrammedRate.DailyRate(rx);
        var what = drugMismatch && concMismatch ? "drug and concentration" : drugMismatch ? "drug" : "concentration";
        var summary = string.Create(Inv,
            $"Refill {what} mismatch: the reservoir was filled with {Describe(filled, filledConc)} but the prescription in force is {Describe(prescribed, rx.Concentration)}");
        if (!drugMismatch && filledMcg is { } fm && prescribedMcg is { } pm && pm > 0)
        {
            summary += string.Create(Inv, $"; the pump delivers {fm / pm:0.##}× the prescribed dose ({fm * volume:0.###} instead of {pm * volume:0.###} mcg/day)");
        }

        summary += ". A wrong concentration is a known cause of fatal overdose: verify the reservoir now.";
        return Verdict.Found(kind, "critical", summary, new Dictionary<string, double>(StringComparer.Ordinal)
        {
            ["drugMismatch"] = drugMismatch ? 1 : 0,
            ["concentrationMismatch"] = concMismatch ? 1 : 0,
            ["refilledDrugUnknown"] = filled.Unknown ? 1 : 0,
            ["prescribedDrugUnknown"] = prescribed.Unknown ? 1 : 0,
            ["refilledConcentrationMcgPerMl"] = filledMcg ?? -1,
            ["prescribedConcentrationMcgPerMl"] = prescribedMcg ?? -1,
            ["concentrationRatio"] = filledMcg is { } a && prescribedMcg is { } b && b > 0 ? Math.Round(a / b, 4) : -1,
            ["programmedMlPerDay"] = Math.Round(volume, 4),
            ["actualMcgPerDay"] = filledMcg is { } a2 ? Math.Round(a2 * volume, 4) : -1,
            ["prescribedMcgPerDay"] = prescribedMcg is { } b2 ? Math.Round(b2 * volume, 4) : -1,
            ["refillAtUnixSeconds"] = refillAt.ToUnixTimeSeconds(),
        }, changedAt);
    }

    /// <summary>
    /// <c>dose-above-limit</c>: the most the prescription lets the pump deliver in a day (programmed volume, flex
    /// included, plus the maximum patient boluses, times the concentration; the concentration actually filled when it
    /// is higher) above the drug's labelled maximum (<see cref="DoseLimits"/>): critical for ziconotide and baclofen,
    /// a warning above morphine's 20 mg/day caution. Also a ziconotide titration faster than the label (a step over
    /// 2.4 mcg/day, more than 3 increases in 7 days, or a start above 2.4 mcg/day): warning. Resolved when the
    /// prescription in force is within the limit and was not a too-fast step.
    /// </summary>
    public static Verdict DoseAboveLimit(PumpState state)
    {
        const string kind = AnomalyKinds.DoseAboveLimit;
        var rx = state.Prescription;
        var open = state.AnomalyOfKind(kind);
        if (rx is null)
        {
            return Verdict.None(kind);
        }

        var dose = DailyDose.Of(rx);
        var s = state.Detectors.Safety;
        var changedAt = s.LastRefillAt is { } r && r > state.PrescriptionAt ? r : state.PrescriptionAt;

        // One finding per prescription or refill: a clinician who resolves it keeps it resolved until the next change.
        if (state.Detectors.LastOpened(kind) is { } last && last >= changedAt)
        {
            return Verdict.None(kind);
        }

        if (dose.Drug.Primary is { } primary && DoseLimits.ByDrug.TryGetValue(primary, out var limit) && dose.ConcentrationMcgPerMl is { } conc)
        {
            // If the reservoir holds the same drug at a higher concentration, that is what reaches the patient.
            var filled = s.RefillDrug is not null && DrugVocabulary.Normalize(s.RefillDrug).Primary == primary
                ? ConcentrationUnits.ToMcgPerMl(new Concentration { Value = s.RefillConcentrationValue ?? 0, Unit = s.RefillConcentrationUnit ?? "" })
                : null;
            var effective = Math.Max(conc, filled ?? 0);
            var max = effective * (dose.VolumeMlPerDay + dose.BolusMlPerDay);
            if (max > limit.MaxMcgPerDay * (1 + ConcentrationUnits.RelativeTolerance))
            {
                var summary = string.Create(Inv,
                    $"Daily dose above the labelled limit: {Mass(max)}/day of {dose.Drug.Canonical} ({dose.VolumeMlPerDay:0.###} mL/day");
                summary += dose.BolusMlPerDay > 0 ? string.Create(Inv, $" + up to {dose.BolusMlPerDay:0.###} mL/day of boluses") : "";
                summary += string.Create(Inv, $" at {effective:0.###} mcg/mL) against {Mass(limit.MaxMcgPerDay)}/day ({limit.Basis}).");
                return Verdict.Found(kind, limit.Severity, summary, new Dictionary<string, double>(StringComparer.Ordinal)
                {
                    ["dailyDoseMcg"] = Math.Round(max, 4),
                    ["basalDoseMcg"] = Math.Round(effective * dose.VolumeMlPerDay, 4),
                    ["limitMcgPerDay"] = limit.MaxMcgPerDay,
                    ["ratioToLimit"] = Math.Round(max / limit.MaxMcgPerDay, 4),
                    ["programmedMlPerDay"] = Math.Round(dose.VolumeMlPerDay, 4),
                    ["bolusMlPerDay"] = Math.Round(dose.BolusMlPerDay, 4),
                    ["concentrationMcgPerMl"] = effective,
                    ["titration"] = 0,
                }, changedAt);
            }
        }

        if (s.TitrationViolationAt is { } violationAt && state.PrescriptionAt == violationAt)
        {
            var why = s.TitrationIncreasesInWeek == 0
                ? string.Create(Inv, $"started at {s.TitrationToMcgPerDay:0.###} mcg/day (label: start at most {DoseLimits.ZiconotideMaxStartMcgPerDay} mcg/day)")
                : string.Create(Inv, $"raised from {s.TitrationFromMcgPerDay:0.###} to {s.TitrationToMcgPerDay:0.###} mcg/day, the {Ordinal(s.TitrationIncreasesInWeek)} increase in 7 days (label: by at most {DoseLimits.ZiconotideMaxStepMcgPerDay} mcg/day, no more than 2–3 times a week)");
            return Verdict.Found(kind, "warning", $"Ziconotide titrated too fast: {why}.", new Dictionary<string, double>(StringComparer.Ordinal)
            {
                ["dailyDoseMcg"] = Math.Round(s.TitrationToMcgPerDay, 4),
                ["previousDoseMcg"] = Math.Round(s.TitrationFromMcgPerDay, 4),
                ["stepMcgPerDay"] = Math.Round(s.TitrationStepMcgPerDay, 4),
                ["increasesIn7Days"] = s.TitrationIncreasesInWeek,
                ["maxStepMcgPerDay"] = DoseLimits.ZiconotideMaxStepMcgPerDay,
                ["maxIncreasesPerWeek"] = DoseLimits.ZiconotideMaxIncreasesPerWeek,
                ["titration"] = 1,
            }, violationAt);
        }

        return open is not null && changedAt > open.DetectedAt ? Verdict.Clear(kind) : Verdict.None(kind);
    }

    private static string Describe(DrugName drug, Concentration c) =>
        string.Create(Inv, $"{(drug.Components.Count > 0 ? drug.Canonical : "(no drug)")}{(drug.Unknown ? " (not in the drug vocabulary)" : "")} {c.Value:0.###} {c.Unit}");

    private static string Mass(double mcg) => mcg >= 1000 ? string.Create(Inv, $"{mcg / 1000:0.###} mg") : string.Create(Inv, $"{mcg:0.###} mcg");

    private static string Ordinal(int n) => n switch { 1 => "1st", 2 => "2nd", 3 => "3rd", _ => string.Create(Inv, $"{n}th") };
}
