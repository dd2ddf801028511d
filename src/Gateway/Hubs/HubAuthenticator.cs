using System.Collections.Concurrent;
using System.Security.Cryptography;
using System.Text;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using PumpFleet.Contracts.Hub;
using PumpFleet.Gateway.Hosting;
using PumpFleet.Gateway.Protocol;

namespace PumpFleet.Gateway.Hubs;

/// <summary>Result of checking a hub's MQTT credentials.</summary>
public enum HubAuthResult
{
    /// <summary>Known hub, right secret (or a dev fleet hub, now provisioned).</summary>
    Accepted,
    /// <summary>Unknown hub, revoked hub, wrong secret or malformed id.</summary>
    Denied,
}

/// <summary>Checks hub credentials against the hashed secrets in PostgreSQL (and the dev fleet secret when enabled).</summary>
public sealed partial class HubAuthenticator(HubStore store, IOptions<HubAuthOptions> options, TimeProvider time, ILogger<HubAuthenticator> logger)
{
    // A verified (hub, stored hash, password digest) is remembered briefly: PBKDF2 is deliberately slow and a gateway
    // restart makes every hub reconnect at once. The row is still read each time, so a revocation or rotation applies at once.
    private readonly ConcurrentDictionary<string, (string StoredHash, byte[] PasswordDigest, DateTimeOffset Until)> _verified = new(StringComparer.Ordinal);

    /// <summary>Checks <paramref name="password"/> for <paramref name="hubId"/>. Throws when PostgreSQL is unreachable.</summary>
    public async Task<HubAuthResult> AuthenticateAsync(string hubId, string? password, CancellationToken ct)
    {
        if (!HubTopics.IsValidId(hubId) || string.IsNullOrEmpty(password))
        {
            return HubAuthResult.Denied;
        }

        var o = options.Value;
        var hub = await store.FindAsync(hubId, ct);
        if (hub is null)
        {
            if (!string.IsNullOrEmpty(o.DevFleetSecret) && FixedTimeEquals(password, SecretHasher.DevFleetPassword(o.DevFleetSecret, hubId)))
            {
                await store.TryCreateAsync(hubId, SecretHasher.Hash(password, o.Pbkdf2Iterations), "dev-fleet", ct);
                LogDevFleetProvisioned(hubId);
                return HubAuthResult.Accepted;
            }

            return HubAuthResult.Denied;
        }

        if (hub.RevokedAt is not null)
        {
            return HubAuthResult.Denied;
        }

        var digest = SHA256.HashData(Encoding.UTF8.GetBytes(password));
        var now = time.GetUtcNow();
        if (_verified.TryGetValue(hubId, out var cached) && cached.StoredHash == hub.SecretHash && cached.Until > now &&
            CryptographicOperations.FixedTimeEquals(cached.PasswordDigest, digest))
        {
            return HubAuthResult.Accepted;
        }

        if (!SecretHasher.Verify(password, hub.SecretHash))
        {
            return HubAuthResult.Denied;
        }

        if (o.VerifiedCacheTtl > TimeSpan.Zero)
        {
            _verified[hubId] = (hub.SecretHash, digest, now + o.VerifiedCacheTtl);
        }

        return HubAuthResult.Accepted;
    }

    private static bool FixedTimeEquals(string a, string b) =>
        CryptographicOperations.FixedTimeEquals(Encoding.UTF8.GetBytes(a), Encoding.UTF8.GetBytes(b));

    [LoggerMessage(Level = LogLevel.Information, Message = "Hub {HubId} authenticated with the dev fleet secret and was provisioned")]
    private partial void LogDevFleetProvisioned(string hubId);
}
