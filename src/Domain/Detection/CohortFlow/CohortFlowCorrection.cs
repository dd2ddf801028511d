using PumpFleet.Contracts.Views;

namespace PumpFleet.Domain.Detection.CohortFlow;

/// <summary>An open <c>cohort-flow-deviation</c>: the cohort and the flow factor its refills revealed.</summary>
/// <param name="AnomalyId">The anomaly (the correction's source).</param>
/// <param name="Cohort">The cohort it covers.</param>
/// <param name="Factor">Estimated flow factor (real over motor-reported consumption).</param>
/// <param name="DetectedAt">When it was raised.</param>
public sealed record CohortFlowCorrection(string AnomalyId, CohortKey Cohort, double Factor, DateTimeOffset DetectedAt)
{
    /// <summary>
    /// Reads an open anomaly of the read model back into a correction: null unless it is a <c>cohort-flow-deviation</c>
    /// on a cohort-flow stream with a usable <c>factor</c> in its evidence.
    /// </summary>
    public static CohortFlowCorrection? FromAnomaly(AnomalyView a)
    {
        ArgumentNullException.ThrowIfNull(a);
        return From(a.Id, a.Serial, a.Kind, a.Status, a.DetectedAt, a.Evidence.TryGetValue("factor", out var f) ? f : null);
    }

    /// <summary>The same from the read model's columns (stream id, kind, status, detection time, the evidence's factor).</summary>
    public static CohortFlowCorrection? From(string id, string streamId, string kind, string status, DateTimeOffset detectedAt, double? factor) =>
        kind == AnomalyKinds.CohortFlowDeviation && status != "resolved" && CohortKey.FromStreamId(streamId) is { } key
        && factor is { } f && IsUsableFactor(f)
            ? new CohortFlowCorrection(id, key, f, detectedAt)
            : null;

    /// <summary>A factor a forecast may take: finite and within 0.2–5 (anything else is a broken estimate, not a pump).</summary>
    public static bool IsUsableFactor(double f) => double.IsFinite(f) && f is > 0.2 and < 5;

    /// <summary>The correction that applies to a pump: of the open ones containing it, the largest deviation (null if none).</summary>
    public static CohortFlowCorrection? For(string? model, string? firmware, string? lot, IEnumerable<CohortFlowCorrection> open)
    {
        ArgumentNullException.ThrowIfNull(open);
        return open.Where(c => c.Cohort.Contains(model, firmware, lot))
            .OrderByDescending(c => Math.Abs(c.Factor - 1)).ThenBy(c => c.AnomalyId, StringComparer.Ordinal).FirstOrDefault();
    }

    /// <summary>
    /// A forecast made at the programmed rate from <paramref name="from"/>, redone at <paramref name="factor"/> × that
    /// rate: the remaining time shrinks (over-infusion) or grows (under-infusion) by the factor. Times not after
    /// <paramref name="from"/> (already reached) stay. This rescales the future only; <see cref="Reaching"/> also
    /// corrects the level the forecast starts from.
    /// </summary>
    public static DateTimeOffset? Correct(DateTimeOffset? forecast, DateTimeOffset? from, double factor)
    {
        if (forecast is not { } t || from is not { } f || t <= f || !(factor > 0) || !double.IsFinite(factor))
        {
            return forecast;
        }

        return f + TimeSpan.FromTicks((long)((t - f).Ticks / factor));
    }

    /// <summary>
    /// When the reservoir reaches <paramref name="levelMl"/> if the pump has run at this factor since its baseline
    /// (the last refill) and keeps doing so: the ledger's estimate is baseline − motor volume, so the real level is
    /// lower by motor volume × (factor − 1) already, and it falls at rate × factor from <paramref name="from"/>.
    /// Null without a rate or origin, or beyond ten years (as the ledger's own forecast); <paramref name="from"/> when
    /// the corrected level is already at or below <paramref name="levelMl"/>.
    /// </summary>
    public DateTimeOffset? Reaching(double? estimateMl, double deliveredSinceBaselineMl, double rateMlPerDay, DateTimeOffset? from, double levelMl)
    {
        if (estimateMl is not { } estimate || from is not { } origin || !(rateMlPerDay > 0) || !double.IsFinite(rateMlPerDay))
        {
            return null;
        }

        var level = estimate - (Math.Max(0, deliveredSinceBaselineMl) * (Factor - 1));
        var days = Math.Max(0, (level - levelMl) / (rateMlPerDay * Factor));
        return days > 3650 ? null : origin.AddDays(days);
    }

    /// <summary>
    /// The pump view's forecasts corrected by this cohort's factor: low-reservoir and empty dates from the ledger, and
    /// the refill-due date (the corrected low-reservoir date, or the drug's own rule when that is earlier: a
    /// ziconotide stability date does not depend on flow).
    /// </summary>
    public FlowCorrectionView Apply(PumpView view)
    {
        ArgumentNullException.ThrowIfNull(view);
        var from = view.ForecastFrom ?? view.LastEventAt;
        var estimate = view.Ledger.EstimatedMl;
        var delivered = view.Ledger.DeliveredSinceRefillMl;
        var rate = view.Ledger.ForecastRateMlPerDay ?? 0;
        var low = Reaching(estimate, delivered, rate, from, view.LowReservoirMl ?? 0);
        var rule = view.NextRefillDueAt is { } due && (view.LowReservoirAt is null || due < view.LowReservoirAt) ? due : (DateTimeOffset?)null;
        return new FlowCorrectionView
        {
            Factor = Factor,
            Cohort = Cohort.ToString(),
            AnomalyId = AnomalyId,
            Since = DetectedAt,
            LowReservoirAt = low,
            ForecastEmptyAt = Reaching(estimate, delivered, rate, from, 0),
            NextRefillDueAt = rule is { } r && (low is null || r < low) ? r : low,
        };
    }
}
