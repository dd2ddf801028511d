using System.Net;
using Microsoft.Extensions.Options;

namespace PumpFleet.Clustering;

/// <summary>
/// Checks <see cref="PumpFleetClusterOptions"/> and its <see cref="MembershipTimings"/>: when the host is composed
/// (<see cref="PumpFleetClusterOptions.Read"/>, ports and modes are needed then) and again at start-up.
/// </summary>
public sealed class PumpFleetClusterOptionsValidator : IValidateOptions<PumpFleetClusterOptions>
{
    /// <inheritdoc />
    public ValidateOptionsResult Validate(string? name, PumpFleetClusterOptions o)
    {
        ArgumentNullException.ThrowIfNull(o);
        var errors = new List<string>();
        if (o.SiloPort is < 1 or > 65535)
        {
            errors.Add($"PumpFleet:SiloPort must be between 1 and 65535, not {o.SiloPort}.");
        }

        if (o.GatewayPort is < 1 or > 65535)
        {
            errors.Add($"PumpFleet:GatewayPort must be between 1 and 65535, not {o.GatewayPort}.");
        }

        if (o.AdvertisedIP is { Length: > 0 } ip && !IPAddress.TryParse(ip, out _))
        {
            errors.Add($"PumpFleet:AdvertisedIP '{ip}' is not an IP address.");
        }

        if (o.SiloPort == o.GatewayPort)
        {
            errors.Add("PumpFleet:SiloPort and PumpFleet:GatewayPort must differ.");
        }

        var m = o.Membership;
        if (m.ProbeTimeout < TimeSpan.FromMilliseconds(200) || m.ProbeTimeout > TimeSpan.FromMinutes(1))
        {
            errors.Add("PumpFleet:Membership:ProbeTimeout must be between 200 ms and 1 min.");
        }

        if (m.NumMissedProbesLimit is < 1 or > 10)
        {
            errors.Add("PumpFleet:Membership:NumMissedProbesLimit must be between 1 and 10.");
        }

        foreach (var (key, value) in new[]
                 {
                     (nameof(m.IAmAliveTablePublishTimeout), m.IAmAliveTablePublishTimeout), (nameof(m.TableRefreshTimeout), m.TableRefreshTimeout),
                     (nameof(m.DefunctSiloCleanupPeriod), m.DefunctSiloCleanupPeriod), (nameof(m.DefunctSiloExpiration), m.DefunctSiloExpiration),
                     (nameof(m.GatewayListRefreshPeriod), m.GatewayListRefreshPeriod),
                 })
        {
            if (value < TimeSpan.FromSeconds(1))
            {
                errors.Add($"PumpFleet:Membership:{key} must be at least 1 s.");
            }
        }

        errors.AddRange(o.Tls.Validate().Select(r => r.ErrorMessage ?? "PumpFleet:Tls is invalid."));

        return errors.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(errors);
    }
}
