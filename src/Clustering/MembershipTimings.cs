namespace PumpFleet.Clustering;

/// <summary>
/// Membership timings (<c>PumpFleet:Membership</c>). The defaults trade a few probes per second for fast failover:
/// a hard-killed silo is declared dead after about <see cref="ProbeTimeout"/> × <see cref="NumMissedProbesLimit"/>
/// (6 s), instead of Orleans' default of several tens of seconds, because pumps on a dead silo cannot be acknowledged
/// until then. docs/cluster.md explains each value; PumpFleetClusterOptionsValidator checks them.
/// </summary>
public sealed class MembershipTimings
{
    /// <summary>How long a silo waits for a probe answer before counting it missed.</summary>
    public TimeSpan ProbeTimeout { get; set; } = TimeSpan.FromSeconds(2);

    /// <summary>Missed probes in a row before a silo votes its peer dead.</summary>
    public int NumMissedProbesLimit { get; set; } = 3;

    /// <summary>How often each silo writes its heartbeat (IAmAliveTime) to PostgreSQL; a diagnostic and a second line of detection.</summary>
    public TimeSpan IAmAliveTablePublishTimeout { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>How often silos re-read the membership table even without a change notification.</summary>
    public TimeSpan TableRefreshTimeout { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>How often dead silos' rows are removed from the membership table.</summary>
    public TimeSpan DefunctSiloCleanupPeriod { get; set; } = TimeSpan.FromHours(1);

    /// <summary>How long a dead silo's row stays for diagnosis before the cleanup removes it.</summary>
    public TimeSpan DefunctSiloExpiration { get; set; } = TimeSpan.FromDays(1);

    /// <summary>How often clients re-read the gateway list (silos that joined or left).</summary>
    public TimeSpan GatewayListRefreshPeriod { get; set; } = TimeSpan.FromSeconds(10);
}
