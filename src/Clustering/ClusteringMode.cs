namespace PumpFleet.Clustering;

/// <summary>How the processes of one PumpFleet cluster find each other (<c>PumpFleet:Clustering</c>).</summary>
public enum ClusteringMode
{
    /// <summary>One machine, fixed loopback ports, no database: the default for local use and single-process runs.</summary>
    Localhost,

    /// <summary>Membership (and reminders) in PostgreSQL through Orleans' ADO.NET providers: any number of silos and clients.</summary>
    AdoNet,
}
