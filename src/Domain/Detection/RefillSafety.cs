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
    public double? RefillConcentrationValue { get => _refillConcentrationValue; set => _refillConcentrationValue = value; }

    private OptionalDouble _refillConcentrationValue;
    public string? RefillConcentrationUnit { get; set => field = Pumps.ValuePool.Share(value); }

    /// <summary>Event time of the last accepted prescription change (a mismatch can also come from reprogramming).</summary>
    public DateTimeOffset? LastPrescriptionAt { get => _lastPrescriptionAt; set => _lastPrescriptionAt = value; }

    private OptionalTime _lastPrescriptionAt;

    // The ziconotide fill and titration fields below are about 120 bytes that only pumps on ziconotide (few) use, and
    // every active pump carries this object (issue 15, memory per active pump): they live in one object allocated by
    // the first setter that stores something other than "none". The properties keep their names and types, so
    // snapshots do not change.
    private Ziconotide? _ziconotide;

    private Ziconotide Zico => _ziconotide ??= new();

    /// <summary>Consecutive ziconotide fills since the pump was naive (1 = the first fill), and the last one's time.</summary>
    public int ZiconotideFills
    {
        get => _ziconotide?.Fills ?? 0;
        set { if (value != 0 || _ziconotide is not null) { Zico.Fills = value; } }
    }

    public DateTimeOffset? ZiconotideFillAt
    {
        get => _ziconotide?.FillAt;
        set { if (value is not null || _ziconotide is not null) { Zico.FillAt = value; } }
    }

    public double? ZiconotideFillMcgPerMl
    {
        get => _ziconotide?.FillMcgPerMl;
        set { if (value is not null || _ziconotide is not null) { Zico.FillMcgPerMl = value; } }
    }

    /// <summary>Programmed ziconotide dose of the prescription in force (mcg/day), or null when not on ziconotide.</summary>
    public double? ZiconotideDoseMcgPerDay
    {
        get => _ziconotide?.DoseMcgPerDay;
        set { if (value is not null || _ziconotide is not null) { Zico.DoseMcgPerDay = value; } }
    }

    /// <summary>Ziconotide dose increases within the last 7 days of prescriptions: (event time, step mcg/day).</summary>
    /// <remarks>Null until the first increase.</remarks>
    public List<DoseStep>? ZiconotideIncreases
    {
        get => _ziconotide?.Increases;
        set { if (value is not null || _ziconotide is not null) { Zico.Increases = value; } }
    }

    /// <summary>Set when the prescription in force broke the titration rule: when, and why (the numbers).</summary>
    public DateTimeOffset? TitrationViolationAt
    {
        get => _ziconotide?.ViolationAt;
        set { if (value is not null || _ziconotide is not null) { Zico.ViolationAt = value; } }
    }

    public double TitrationStepMcgPerDay
    {
        get => _ziconotide?.StepMcgPerDay ?? 0;
        set { if (value != 0 || _ziconotide is not null) { Zico.StepMcgPerDay = value; } }
    }

    public int TitrationIncreasesInWeek
    {
        get => _ziconotide?.IncreasesInWeek ?? 0;
        set { if (value != 0 || _ziconotide is not null) { Zico.IncreasesInWeek = value; } }
    }

    public double TitrationFromMcgPerDay
    {
        get => _ziconotide?.FromMcgPerDay ?? 0;
        set { if (value != 0 || _ziconotide is not null) { Zico.FromMcgPerDay = value; } }
    }

    public double TitrationToMcgPerDay
    {
        get => _ziconotide?.ToMcgPerDay ?? 0;
        set { if (value != 0 || _ziconotide is not null) { Zico.ToMcgPerDay = value; } }
    }

    /// <summary>A deep copy, for the fold window's checkpoints (a re-fold must start from this state, not share it).</summary>
    public RefillSafety Clone()
    {
        var copy = (RefillSafety)MemberwiseClone();
        copy._ziconotide = _ziconotide?.Clone();
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

/// <summary>The ziconotide part of <see cref="RefillSafety"/>, allocated only for pumps that ever store one of its values.</summary>
internal sealed class Ziconotide
{
    private OptionalTime _fillAt;
    private OptionalDouble _fillMcgPerMl;
    private OptionalDouble _doseMcgPerDay;
    private OptionalTime _violationAt;

    public int Fills { get; set; }

    public DateTimeOffset? FillAt { get => _fillAt; set => _fillAt = value; }

    public double? FillMcgPerMl { get => _fillMcgPerMl; set => _fillMcgPerMl = value; }

    public double? DoseMcgPerDay { get => _doseMcgPerDay; set => _doseMcgPerDay = value; }

    public List<DoseStep>? Increases { get; set; }

    public DateTimeOffset? ViolationAt { get => _violationAt; set => _violationAt = value; }

    public double StepMcgPerDay { get; set; }

    public int IncreasesInWeek { get; set; }

    public double FromMcgPerDay { get; set; }

    public double ToMcgPerDay { get; set; }

    public Ziconotide Clone()
    {
        var copy = (Ziconotide)MemberwiseClone();
        copy.Increases = Increases is null ? null : [.. Increases];
        return copy;
    }
}
