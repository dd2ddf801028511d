using PumpFleet.Domain.Pumps;
using PumpFleet.Contracts.Events;
using PumpFleet.Domain.Drugs;

namespace PumpFleet.Domain.Detection;

/// <summary>
/// What the refill-safety detectors need, folded from events (part of <see cref="DetectorState"/>, so a snapshot
/// plus tail rebuilds it): the drug and concentration last filled into the reservoir, the ziconotide fill history
/// that sets the refill-due date (§1.5 [44]), and the ziconotide titration steps of the last week [43].
/// </summary>
public sealed class RefillSafety
{
    /// <summary>Event time of the last refill, and what it put in the reservoir.</summary>
    public DateTimeOffset? LastRefillAt { get => _lastRefillAt; set => _lastRefillAt = value; }

    private OptionalTime _lastRefillAt;
    public string? RefillDrug { get; set => field = Pumps.ValuePool.Share(value); }
    public double? RefillConcentrationValue { get; set; }
    public string? RefillConcentrationUnit { get; set => field = Pumps.ValuePool.Share(value); }

    /// <summary>Event time of the last accepted prescription change (a mismatch can also come from reprogramming).</summary>
    public DateTimeOffset? LastPrescriptionAt { get => _lastPrescriptionAt; set => _lastPrescriptionAt = value; }

    private OptionalTime _lastPrescriptionAt;

    /// <summary>Consecutive ziconotide fills since the pump was naive (1 = the first fill), and the last one's time.</summary>
    public int ZiconotideFills { get; set; }
    public DateTimeOffset? ZiconotideFillAt { get => _ziconotideFillAt; set => _ziconotideFillAt = value; }

    private OptionalTime _ziconotideFillAt;
    public double? ZiconotideFillMcgPerMl { get; set; }

    /// <summary>Programmed ziconotide dose of the prescription in force (mcg/day), or null when not on ziconotide.</summary>
    public double? ZiconotideDoseMcgPerDay { get; set; }

    /// <summary>Ziconotide dose increases within the last 7 days of prescriptions: (event time, step mcg/day).</summary>
    /// <remarks>Null until the first increase: most pumps are not on ziconotide, and every active pump carries this state.</remarks>
    public List<DoseStep>? ZiconotideIncreases { get; set; }

    /// <summary>Set when the prescription in force broke the titration rule: when, and why (the numbers).</summary>
    public DateTimeOffset? TitrationViolationAt { get => _titrationViolationAt; set => _titrationViolationAt = value; }

    private OptionalTime _titrationViolationAt;
    public double TitrationStepMcgPerDay { get; set; }
    public int TitrationIncreasesInWeek { get; set; }
    public double TitrationFromMcgPerDay { get; set; }
    public double TitrationToMcgPerDay { get; set; }

    /// <summary>A deep copy, for the fold window's checkpoints (a re-fold must start from this state, not share it).</summary>
    public RefillSafety Clone()
    {
        var copy = (RefillSafety)MemberwiseClone();
        copy.ZiconotideIncreases = ZiconotideIncreases is null ? null : [.. ZiconotideIncreases];
        return copy;
    }

    /// <summary>Folds a refill (trusted or not: what went into the reservoir does not depend on the clock).</summary>
    public void OnRefill(RefillPerformed x, bool firstRefillOfPump)
    {
        var previousDrug = RefillDrug is null ? null : DrugVocabulary.Normalize(RefillDrug);
        LastRefillAt = x.At;
        RefillDrug = x.Drug;
        RefillConcentrationValue = x.Concentration.Value;
        RefillConcentrationUnit = x.Concentration.Unit;
        var drug = DrugVocabulary.Normalize(x.Drug);
        if (!drug.Contains(DrugVocabulary.Ziconotide))
        {
            ZiconotideFills = 0;
            ZiconotideFillAt = null;
            ZiconotideFillMcgPerMl = null;
            return;
        }

        // Naive pump: the pump's first fill, or a switch from another drug. A pump first seen mid-therapy with a
        // residual in it is taken as already primed (its history before the platform is unknown).
        var naive = ZiconotideFills == 0 && ((firstRefillOfPump && x.AspiratedResidualMl <= 0) || (previousDrug is not null && !previousDrug.Contains(DrugVocabulary.Ziconotide)));
        ZiconotideFills = naive ? 1 : Math.Max(2, ZiconotideFills + 1);
        ZiconotideFillAt = x.At;
        ZiconotideFillMcgPerMl = ConcentrationUnits.ToMcgPerMl(x.Concentration);
    }

    /// <summary>Prescriptions accepted so far (the first one seen is not judged as a titration step: its history is unknown).</summary>
    public int PrescriptionsSeen { get; set; }

    /// <summary>Folds a prescription the state accepted as the one in force.</summary>
    public void OnPrescription(PrescriptionSet rx)
    {
        LastPrescriptionAt = rx.At;
        var dose = DailyDose.Of(rx);
        var previous = ZiconotideDoseMcgPerDay;
        var seenBefore = PrescriptionsSeen++ > 0;
        var onZiconotide = dose.Drug.Primary == DrugVocabulary.Ziconotide && dose.BasalMcgPerDay is not null;
        ZiconotideDoseMcgPerDay = onZiconotide ? dose.BasalMcgPerDay : null;
        ZiconotideIncreases?.RemoveAll(s => rx.At - s.At >= TimeSpan.FromDays(7));
        TitrationViolationAt = null;
        if (!onZiconotide || !seenBefore)
        {
            return;
        }

        var to = dose.BasalMcgPerDay!.Value;
        if (previous is not { } from)
        {
            // A switch to ziconotide seen by the platform: start at most 2.4 mcg/day [43].
            if (to > DoseLimits.ZiconotideMaxStartMcgPerDay * (1 + ConcentrationUnits.RelativeTolerance))
            {
                Violation(rx.At, to, 0, to, 0);
            }

            return;
        }

        var step = to - from;
        if (step <= 1e-9)
        {
            return;
        }

        (ZiconotideIncreases ??= []).Add(new DoseStep(rx.At, step));
        var tooBig = step > DoseLimits.ZiconotideMaxStepMcgPerDay * (1 + ConcentrationUnits.RelativeTolerance);
        var tooOften = ZiconotideIncreases.Count > DoseLimits.ZiconotideMaxIncreasesPerWeek;
        if (tooBig || tooOften)
        {
            Violation(rx.At, step, ZiconotideIncreases.Count, to, from);
        }
    }

    private void Violation(DateTimeOffset at, double step, int increases, double to, double from)
    {
        TitrationViolationAt = at;
        TitrationStepMcgPerDay = step;
        TitrationIncreasesInWeek = increases;
        TitrationFromMcgPerDay = from;
        TitrationToMcgPerDay = to;
    }

    /// <summary>The refill-due date by the ziconotide stability rules, or null when the reservoir holds no ziconotide.</summary>
    public DateTimeOffset? ZiconotideRefillDueBy =>
        ZiconotideFillAt is { } at ? ZiconotideRefillRules.DueBy(at, ZiconotideFills, ZiconotideFillMcgPerMl) : null;
}

/// <summary>One dose increase: when, and by how much (mcg/day).</summary>
public sealed record DoseStep(DateTimeOffset At, double StepMcgPerDay);
