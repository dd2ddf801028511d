using System.Collections.Concurrent;
using System.Security.Cryptography;
using System.Text;

namespace PumpFleet.Gateway.Hubs;

/// <summary>
/// Passwords this gateway instance has verified with PBKDF2, remembered per hub id as a keyed fast hash
/// (HMAC-SHA256 under a random key that never leaves the process) together with the stored hash they matched.
/// A hub that presents a remembered password has proven itself: it skips the verification budget and the
/// failed-login backoffs, so neither a flood against its own hub id nor one that exhausts the budget keeps it out.
/// It does not skip the registry read: the row must still be active and carry the same stored hash, so a
/// revocation or rotation applies at once even if the registry watcher's notification was missed. Entries are made
/// only for successful checks (bounded by the provisioned hubs), slide on every use and expire after the TTL.
/// </summary>
public sealed class VerifiedCredentials(TimeProvider time, TimeSpan ttl)
{
    private readonly byte[] _key = RandomNumberGenerator.GetBytes(32);
    private readonly ConcurrentDictionary<string, Entry> _entries = new(StringComparer.Ordinal);

    /// <summary>Hub ids remembered (expired entries included until they are next looked at).</summary>
    public int Count => _entries.Count;

    /// <summary>
    /// The stored hash <paramref name="password"/> was verified against, when this instance verified it for
    /// <paramref name="hubId"/> within the TTL; else null. Compares in constant time.
    /// </summary>
    public string? Recall(string hubId, string? password)
    {
        if (ttl <= TimeSpan.Zero || string.IsNullOrEmpty(password) || !_entries.TryGetValue(hubId, out var entry))
        {
            return null;
        }

        var now = time.GetUtcNow();
        if (entry.Until <= now)
        {
            _entries.TryRemove(new KeyValuePair<string, Entry>(hubId, entry));
            return null;
        }

        if (!CryptographicOperations.FixedTimeEquals(entry.Fingerprint, Fingerprint(hubId, password)))
        {
            return null;
        }

        // Sliding: a hub that keeps reconnecting (or stays connected and reconnects after a blip) stays proven.
        _entries.TryUpdate(hubId, entry with { Until = now + ttl }, entry);
        return entry.StoredHash;
    }

    /// <summary>Remembers that <paramref name="password"/> matched <paramref name="storedHash"/> for <paramref name="hubId"/>.</summary>
    public void Remember(string hubId, string password, string storedHash)
    {
        if (ttl > TimeSpan.Zero)
        {
            _entries[hubId] = new Entry(Fingerprint(hubId, password), storedHash, time.GetUtcNow() + ttl);
        }
    }

    /// <summary>Forgets a hub (its credential changed: rotated or revoked).</summary>
    public void Forget(string hubId) => _entries.TryRemove(hubId, out _);

    private byte[] Fingerprint(string hubId, string password)
    {
        // The hub id is part of the message so one hub's remembered password says nothing about another's.
        var message = Encoding.UTF8.GetBytes($"{hubId}\n{password}");
        return HMACSHA256.HashData(_key, message);
    }

    private sealed record Entry(byte[] Fingerprint, string StoredHash, DateTimeOffset Until);
}
