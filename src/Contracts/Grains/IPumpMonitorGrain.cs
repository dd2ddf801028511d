namespace PumpFleet.Contracts.Grains;

/// <summary>Fleet-level checks on one pump (called by the silent-pump monitor). Key: the pump serial.</summary>
[Alias("pumpfleet.IPumpMonitorGrain")]
public interface IPumpMonitorGrain : IGrainWithStringKey
{
    /// <summary>
    /// Opens a <c>silent</c> anomaly when nothing was received from the pump after <paramref name="lastSeenAt"/>
    /// and none is open. Returns true when one was opened. It resolves by itself when data arrives.
    /// </summary>
    [Alias("MarkSilent")]
    Task<bool> MarkSilentAsync(DateTimeOffset lastSeenAt, TimeSpan window);

    /// <summary>
    /// Re-evaluates the detectors that depend on time passing (depletion risk, battery forecast) at the current time,
    /// for a pump that has sent nothing since: silence is not health. Returns true when an anomaly opened or resolved.
    /// </summary>
    [Alias("Reevaluate")]
    Task<bool> ReevaluateAsync();

    /// <summary>
    /// Sets the cohort flow correction the pump's forecasts take (the cohort flow job calls it for each pump of a
    /// cohort with an open <c>cohort-flow-deviation</c>, and with null when that warning resolved), then re-evaluates
    /// the depletion risk on it. Returns true when the correction changed (a <c>flow-correction.changed</c> appended).
    /// </summary>
    [Alias("SetFlowCorrection")]
    Task<bool> SetFlowCorrectionAsync(PumpFlowCorrection? correction);
}

/// <summary>The cohort flow correction a pump is told to take (see <see cref="IPumpMonitorGrain.SetFlowCorrectionAsync"/>).</summary>
[GenerateSerializer, Immutable, Alias("pumpfleet.PumpFlowCorrection.v1")]
public sealed record PumpFlowCorrection
{
    /// <summary>The open <c>cohort-flow-deviation</c> anomaly.</summary>
    [Id(0)] public required string AnomalyId { get; init; }
    /// <summary>Its cohort stream id, <c>cohort-flow:{dimension}:{value}</c>.</summary>
    [Id(1)] public required string Cohort { get; init; }
    /// <summary>The cohort's estimated flow factor.</summary>
    [Id(2)] public required double Factor { get; init; }
    /// <summary>When the anomaly was raised.</summary>
    [Id(3)] public required DateTimeOffset Since { get; init; }
}
