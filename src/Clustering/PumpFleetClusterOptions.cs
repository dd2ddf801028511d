using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Options;

namespace PumpFleet.Clustering;

/// <summary>
/// PumpFleet's cluster switches, under the <c>PumpFleet</c> section. They are not under <c>Orleans</c> because Orleans
/// binds that section itself (ClusterId, ServiceId, provider blocks) and would trip over unknown keys.
/// </summary>
public sealed class PumpFleetClusterOptions
{
    /// <summary>The configuration section.</summary>
    public const string SectionName = "PumpFleet";

    /// <summary><c>Localhost</c> (default) or <c>AdoNet</c> (membership and reminders in PostgreSQL).</summary>
    public ClusteringMode Clustering { get; set; } = ClusteringMode.Localhost;

    /// <summary>Silo-to-silo port. Each silo on one machine needs its own.</summary>
    public int SiloPort { get; set; } = 11111;

    /// <summary>Client gateway port of a silo; on a client with localhost clustering, the silo gateway to use.</summary>
    public int GatewayPort { get; set; } = 30000;

    /// <summary>
    /// The address other silos and clients use to reach this silo. Defaults to the <c>POD_IP</c> environment variable
    /// (Kubernetes downward API), then to loopback with localhost clustering, then to Orleans' own choice (the first
    /// non-loopback address of the host). Set <c>127.0.0.1</c> to run several AdoNet silos on one machine.
    /// </summary>
    public string? AdvertisedIP { get; set; }

    /// <summary>Adds Orleans' Kubernetes hosting (pod labels, POD_* variables, deleting pods of dead silos).</summary>
    public bool KubernetesHosting { get; set; }

    /// <summary>Failure detection and membership table housekeeping.</summary>
    public MembershipTimings Membership { get; set; } = new();

    /// <summary>Mutual TLS on every Orleans connection (off by default; docs/security.md).</summary>
    public ClusterTlsOptions Tls { get; set; } = new();

    /// <summary>Reads and validates the section now: ports and modes are needed while the host is being composed.</summary>
    public static PumpFleetClusterOptions Read(IConfiguration configuration)
    {
        ArgumentNullException.ThrowIfNull(configuration);
        var options = configuration.GetSection(SectionName).Get<PumpFleetClusterOptions>() ?? new PumpFleetClusterOptions();
        var result = new PumpFleetClusterOptionsValidator().Validate(null, options);
        if (result.Failed)
        {
            throw new OptionsValidationException(SectionName, typeof(PumpFleetClusterOptions), result.Failures);
        }

        return options;
    }
}
