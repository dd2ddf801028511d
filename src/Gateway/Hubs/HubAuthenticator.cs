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
    /// <summary>Every hashing slot stayed busy for <c>HashWait</c>: try again later.</summary>
    Busy,
}

/// <summary>A check's result and, when accepted, the stored secret hash the password matched.</summary>
public sealed record HubAuthOutcome(HubAuthResult Result, string? SecretHash);

/// <summary>Checks hub credentials against the hashed secrets in PostgreSQL (and the dev fleet secret when enabled).</summary>
public sealed partial class HubAuthenticator(HubStore store, IOptions<HubAuthOptions> options, TimeProvider time, ILogger<HubAuthenticator> logger)
{
    // A verified (hub, stored hash, password digest) is remembered briefly: PBKDF2 is deliberately slow and a gateway
    // restart makes every hub reconnect at once. The row is still read each time, so a revocation or rotation applies at once.
    private readonly ConcurrentDictionary<string, (string StoredHash, byte[] PasswordDigest, DateTimeOffset Until)> _verified = new(StringComparer.Ordinal);
    private readonly SemaphoreSlim _hashing = new(options.Value.HashConcurrency, options.Value.HashConcurrency);

    /// <summary>Checks <paramref name="password"/> for <paramref name="hubId"/>. Throws when PostgreSQL is unreachable.</summary>
    public async Task<HubAuthResult> AuthenticateAsync(string hubId, string? password, CancellationToken ct) =>
        (await VerifyAsync(hubId, password, ct)).Result;

    /// <summary>
    /// As <see cref="AuthenticateAsync"/>, with the stored hash the password was verified against: the embedded
    /// broker keeps it with the session, so a rotation ends exactly the sessions that used the old secret.
    /// </summary>
    public async Task<HubAuthOutcome> VerifyAsync(string hubId, string? password, CancellationToken ct)
    {
        if (!HubTopics.IsValidId(hubId) || string.IsNullOrEmpty(password))
        {
            return new(HubAuthResult.Denied, null);
        }

        var o = options.Value;
        var hub = await store.FindAsync(hubId, ct);
        if (hub is null)
        {
            if (!string.IsNullOrEmpty(o.DevFleetSecret) && FixedTimeEquals(password, SecretHasher.DevFleetPassword(o.DevFleetSecret, hubId)))
            {
                var credential = HubCredential.From(password, o);
                // A concurrent first connect of the same hub may have created the row: the session keeps whichever
                // hash is stored (both were made from this same password).
                var stored = await store.TryCreateAsync(hubId, credential, "dev-fleet", ct)
                    ? credential.SecretHash
                    : (await store.FindAsync(hubId, ct))?.SecretHash;
                LogDevFleetProvisioned(hubId);
                return new(HubAuthResult.Accepted, stored);
            }

            return new(HubAuthResult.Denied, null);
        }

        if (hub.RevokedAt is not null)
        {
            return new(HubAuthResult.Denied, null);
        }

        var digest = SHA256.HashData(Encoding.UTF8.GetBytes(password));
        var now = time.GetUtcNow();
        if (_verified.TryGetValue(hubId, out var cached) && cached.StoredHash == hub.SecretHash && cached.Until > now &&
            CryptographicOperations.FixedTimeEquals(cached.PasswordDigest, digest))
        {
            return new(HubAuthResult.Accepted, hub.SecretHash);
        }

        // PBKDF2 runs in a bounded pool: a flood of wrong passwords queues here instead of taking every core.
        if (!await _hashing.WaitAsync(o.HashWait, ct))
        {
            return new(HubAuthResult.Busy, null);
        }

        bool ok;
        try
        {
            ok = SecretHasher.Verify(password, hub.SecretHash);
        }
        finally
        {
            _hashing.Release();
        }

        if (!ok)
        {
            return new(HubAuthResult.Denied, null);
        }

        if (o.VerifiedCacheTtl > TimeSpan.Zero)
        {
            _verified[hubId] = (hub.SecretHash, digest, now + o.VerifiedCacheTtl);
        }

        return new(HubAuthResult.Accepted, hub.SecretHash);
    }

    private static bool FixedTimeEquals(string a, string b) =>
        CryptographicOperations.FixedTimeEquals(Encoding.UTF8.GetBytes(a), Encoding.UTF8.GetBytes(b));

    [LoggerMessage(Level = LogLevel.Information, Message = "Hub {HubId} authenticated with the dev fleet secret and was provisioned")]
    private partial void LogDevFleetProvisioned(string hubId);
}
