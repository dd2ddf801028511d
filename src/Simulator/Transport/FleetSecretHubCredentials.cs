using System.Security.Cryptography;
using System.Text;

namespace PumpFleet.Simulator.Transport;

/// <summary>
/// Dev provisioning shared with the gateway: secret = lowercase hex of HMAC-SHA256(key = UTF-8 fleet secret,
/// message = UTF-8 hub id). Anyone holding the fleet secret can derive every hub's password, so this is for
/// development and tests only.
/// </summary>
public sealed class FleetSecretHubCredentials(string fleetSecret) : IHubCredentials
{
    private readonly byte[] _key = Encoding.UTF8.GetBytes(fleetSecret);

    /// <inheritdoc/>
    public string GetSecret(string hubId) => Derive(_key, hubId);

    /// <summary>The derivation, for other components that provision hubs the same way.</summary>
    public static string Derive(string fleetSecret, string hubId) => Derive(Encoding.UTF8.GetBytes(fleetSecret), hubId);

    private static string Derive(byte[] key, string hubId) =>
        Convert.ToHexStringLower(HMACSHA256.HashData(key, Encoding.UTF8.GetBytes(hubId)));
}
