namespace PumpFleet.Domain.Detection.CohortFlow;

/// <summary>
/// The cohort flow correction a pump's state holds (folded from <c>flow-correction.changed</c>): plain settable
/// properties, so it round-trips through a snapshot as it is.
/// </summary>
public sealed class AppliedFlowCorrection
{
    /// <summary>The source <c>cohort-flow-deviation</c>.</summary>
    public string AnomalyId { get; set; } = "";

    /// <summary>Its cohort stream id.</summary>
    public string Cohort { get; set; } = "";

    /// <summary>The cohort's flow factor.</summary>
    public double Factor { get; set; } = 1;

    /// <summary>When the source was raised.</summary>
    public DateTimeOffset Since { get; set; }

    /// <summary>The correction, or null when the stored cohort or factor is not usable (then nothing is corrected).</summary>
    public CohortFlowCorrection? ToCorrection() =>
        CohortKey.FromStreamId(Cohort) is { } key && CohortFlowCorrection.IsUsableFactor(Factor)
            ? new CohortFlowCorrection(AnomalyId, key, Factor, Since)
            : null;
}
