using PumpFleet.Domain.Pumps;

namespace PumpFleet.Domain.Detection;

/// <summary>
/// Sufficient statistics of the under-/over-infusion detector: a two-sided tabular CUSUM on the increments of an
/// EWMA-smoothed "level residual" <c>r = measured level + cumulative motor volume</c>, which stays constant while
/// the reservoir empties exactly as the motor says. Increments of r between successive measured readings are the
/// observed-minus-delivered consumption; the CUSUM allows <see cref="ReferenceFraction"/> of the delivered volume
/// per step (the classic k = half the shift of interest, here half the ±14.5 % band), so a pump inside its
/// accuracy band drifts back to zero and a sustained deviation accumulates.
/// Smoothing first matters: the increments' noise telescopes to the noise of the two end points, so the CUSUM's
/// false-alarm behaviour is set by the smoothed level's noise, about a third of a single reading's with λ = 0.2.
/// Segments restart at every refill (the level jumps), so a refill in the middle of a run never looks like flow.
/// Constants live here, not in options, so the fold never depends on configuration (a replay gives the same state).
/// </summary>
public sealed class FlowCusum
{
    /// <summary>EWMA weight of a new reading.</summary>
    public const double Lambda = 0.2;

    /// <summary>CUSUM allowance as a fraction of the delivered volume of a step: half the 14.5 % accuracy band (§0 item 2).</summary>
    public const double ReferenceFraction = 0.0725;

    /// <summary>
    /// Readings of a segment used only to settle the EWMA before increments count. The EWMA starts as a running mean
    /// (weight max(λ, 1/n)), so after 8 readings its noise is close to the stationary σ²·λ/(2−λ); starting it at one
    /// raw reading instead left that reading's noise in it for days and showed as a drift (a healthy-fleet false alarm).
    /// </summary>
    public const int BurnInReadings = 8;

    /// <summary>Refill count of the current segment (segments restart at each refill).</summary>
    public int SegmentRefills { get; set; } = -1;

    /// <summary>Readings in the current segment.</summary>
    public int SegmentReadings { get; set; }

    /// <summary>Event time of the last measured reading used.</summary>
    public DateTimeOffset? LastAt { get => _lastAt; set => _lastAt = value; }

    private OptionalTime _lastAt;

    /// <summary>Last raw residual (level + cumulative delivered).</summary>
    public double LastRaw { get; set; }

    /// <summary>Cumulative delivered volume at the last reading.</summary>
    public double LastDelivered { get; set; }

    /// <summary>EWMA of the residual.</summary>
    public double Smoothed { get; set; }

    /// <summary>Count of first differences in the noise estimate (across the pump's life).</summary>
    public long NoiseCount { get; set; }

    /// <summary>Mean of (first difference of the raw residual)² / 2: an estimate of one reading's noise variance.</summary>
    public double NoiseVariance { get; set; }

    /// <summary>Readings used in total (for the warm-up rule).</summary>
    public long TotalReadings { get; set; }

    /// <summary>Upper CUSUM (observed consumption above delivered: over-infusion), in mL.</summary>
    public double Over { get; set; }

    /// <summary>Lower CUSUM (observed consumption below delivered: under-infusion), in mL.</summary>
    public double Under { get; set; }

    /// <summary>The over-infusion run since the CUSUM last left zero.</summary>
    public FlowRun OverRun { get; set; } = new();

    /// <summary>The under-infusion run since the CUSUM last left zero.</summary>
    public FlowRun UnderRun { get; set; } = new();

    /// <summary>Standard deviation of one reading's noise (estimate only; the engine applies the floor).</summary>
    public double NoiseSd => Math.Sqrt(Math.Max(0, NoiseVariance));

    /// <summary>
    /// A CUSUM that never saw a measured level, shared by every pump that has none (DetectorState.FlowForReading):
    /// read only, never changed (the fold changes a pump's own, allocated at its first reading).
    /// </summary>
    internal static FlowCusum NeverStarted { get; } = new();

    /// <summary>True when nothing was ever folded in (every member at its initial value).</summary>
    [System.Text.Json.Serialization.JsonIgnore]
    public bool IsNeverStarted =>
        SegmentRefills == -1 && SegmentReadings == 0 && LastAt is null && LastRaw == 0 && LastDelivered == 0 && Smoothed == 0
        && NoiseCount == 0 && NoiseVariance == 0 && TotalReadings == 0 && Over == 0 && Under == 0
        && OverRun.IsEmpty && UnderRun.IsEmpty;

    /// <summary>A deep copy, for the re-fold checkpoints.</summary>
    public FlowCusum Clone()
    {
        var c = (FlowCusum)MemberwiseClone();
        c.OverRun = OverRun.Clone();
        c.UnderRun = UnderRun.Clone();
        return c;
    }

    /// <summary>Folds one trusted measured reading.</summary>
    /// <param name="at">Event time.</param>
    /// <param name="levelMl">Measured level.</param>
    /// <param name="deliveredTotalMl">Cumulative motor volume up to the reading.</param>
    /// <param name="refills">Refills so far (segment key).</param>
    /// <param name="programmedTotalMl">Cumulative programmed volume (for evidence).</param>
    public void OnMeasured(DateTimeOffset at, double levelMl, double deliveredTotalMl, int refills, double programmedTotalMl)
    {
        // Late readings (older than the last used) are ignored: increments must move forward in event time.
        if (LastAt is { } last && at <= last && refills == SegmentRefills)
        {
            return;
        }

        var raw = levelMl + deliveredTotalMl;
        if (refills != SegmentRefills)
        {
            SegmentRefills = refills;
            SegmentReadings = 1;
            Smoothed = raw;
            LastRaw = raw;
            LastDelivered = deliveredTotalMl;
            LastAt = at;
            TotalReadings++;
            return;
        }

        var diff = raw - LastRaw;
        NoiseCount++;
        NoiseVariance += ((diff * diff / 2) - NoiseVariance) / NoiseCount;

        var previous = Smoothed;
        SegmentReadings++;
        Smoothed += Math.Max(Lambda, 1.0 / SegmentReadings) * (raw - Smoothed);
        var delivered = Math.Max(0, deliveredTotalMl - LastDelivered);
        TotalReadings++;
        LastRaw = raw;
        LastDelivered = deliveredTotalMl;
        LastAt = at;
        if (SegmentReadings <= BurnInReadings)
        {
            return;
        }

        // A falling residual means the reservoir emptied faster than the motor reported.
        var excess = previous - Smoothed;
        Over = Step(Over, excess - (ReferenceFraction * delivered), OverRun, at, excess, delivered, programmedTotalMl);
        Under = Step(Under, -excess - (ReferenceFraction * delivered), UnderRun, at, -excess, delivered, programmedTotalMl);
    }

    private static double Step(double s, double increment, FlowRun run, DateTimeOffset at, double excess, double delivered, double programmedTotal)
    {
        var next = Math.Max(0, s + increment);
        if (next <= 0)
        {
            run.Reset();
            return 0;
        }

        if (s <= 0)
        {
            run.Reset();
            run.StartedAt = at;
            run.StartProgrammedTotalMl = programmedTotal;
        }

        run.ExcessMl += excess;
        run.DeliveredMl += delivered;
        run.ProgrammedMl = programmedTotal - run.StartProgrammedTotalMl;
        run.Readings++;
        run.LastAt = at;
        return next;
    }

    /// <summary>Restarts one side after an anomaly opened for it, so that a persisting fault must show again.</summary>
    public void Restart(bool over)
    {
        if (over)
        {
            Over = 0;
            OverRun.Reset();
        }
        else
        {
            Under = 0;
            UnderRun.Reset();
        }
    }
}

/// <summary>A CUSUM run: from when the statistic last left zero (the change-point estimate) to now.</summary>
public sealed class FlowRun
{
    public DateTimeOffset? StartedAt { get => _startedAt; set => _startedAt = value; }

    private OptionalTime _startedAt;
    public DateTimeOffset? LastAt { get => _lastAt; set => _lastAt = value; }

    private OptionalTime _lastAt;
    public int Readings { get; set; }

    /// <summary>Observed consumption beyond the delivered volume over the run (mL; the deviation's direction).</summary>
    public double ExcessMl { get; set; }

    /// <summary>Motor volume over the run.</summary>
    public double DeliveredMl { get; set; }

    /// <summary>Programmed volume over the run.</summary>
    public double ProgrammedMl { get; set; }

    public double StartProgrammedTotalMl { get; set; }

    /// <summary>Relative deviation of observed from delivered consumption over the run, or null without volume.</summary>
    public double? RelativeDeviation => DeliveredMl > 1e-6 ? ExcessMl / DeliveredMl : null;

    /// <summary>True when every member is at its initial (reset) value.</summary>
    [System.Text.Json.Serialization.JsonIgnore]
    public bool IsEmpty =>
        StartedAt is null && LastAt is null && Readings == 0 && ExcessMl == 0 && DeliveredMl == 0 && ProgrammedMl == 0 && StartProgrammedTotalMl == 0;

    /// <summary>A deep copy (every member is a value).</summary>
    public FlowRun Clone() => (FlowRun)MemberwiseClone();

    public void Reset()
    {
        StartedAt = null;
        LastAt = null;
        Readings = 0;
        ExcessMl = 0;
        DeliveredMl = 0;
        ProgrammedMl = 0;
        StartProgrammedTotalMl = 0;
    }
}
