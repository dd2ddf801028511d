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
}
