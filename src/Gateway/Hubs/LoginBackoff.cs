namespace PumpFleet.Gateway.Hubs;

/// <summary>
/// Backoff after failed logins, per hub id and per remote address: while a key is blocked its connection attempts
/// are refused at once, before any database read or PBKDF2, so a flood of wrong passwords costs the gateway almost
/// nothing and cannot raise other hubs' latency. A hub id is blocked from its first failure (base, doubling up to
/// max); an address only after <c>addressAllowance</c> failures in a row (many hubs may share a NAT address).
/// A success clears both.
/// </summary>
public sealed class LoginBackoff(TimeProvider time, TimeSpan baseDelay, TimeSpan maxDelay, int addressAllowance)
{
    /// <summary>Keys tracked at most per kind; beyond it the oldest half is dropped.</summary>
    public const int MaxTracked = 100_000;

    private readonly Lock _lock = new();
    private readonly Dictionary<string, (int Failures, DateTimeOffset Until)> _hubs = new(StringComparer.Ordinal);
    private readonly Dictionary<string, (int Failures, DateTimeOffset Until)> _addresses = new(StringComparer.Ordinal);

    /// <summary>When the key is blocked: until when; else null.</summary>
    public DateTimeOffset? BlockedUntil(string hubId, string? address)
    {
        var now = time.GetUtcNow();
        lock (_lock)
        {
            DateTimeOffset? until = null;
            if (_hubs.TryGetValue(hubId, out var h) && h.Until > now)
            {
                until = h.Until;
            }

            if (address is not null && _addresses.TryGetValue(address, out var a) && a.Until > now && (until is null || a.Until > until))
            {
                until = a.Until;
            }

            return until;
        }
    }

    /// <summary>Records a failed login.</summary>
    public void Failed(string hubId, string? address)
    {
        var now = time.GetUtcNow();
        lock (_lock)
        {
            Bump(_hubs, hubId, now, allowance: 0);
            if (address is not null)
            {
                Bump(_addresses, address, now, addressAllowance);
            }
        }
    }

    /// <summary>Records a successful login.</summary>
    public void Succeeded(string hubId, string? address)
    {
        lock (_lock)
        {
            _hubs.Remove(hubId);
            if (address is not null)
            {
                _addresses.Remove(address);
            }
        }
    }

    private void Bump(Dictionary<string, (int Failures, DateTimeOffset Until)> map, string key, DateTimeOffset now, int allowance)
    {
        if (map.Count >= MaxTracked && !map.ContainsKey(key))
        {
            foreach (var k in map.OrderBy(kv => kv.Value.Until).Take(MaxTracked / 2).Select(kv => kv.Key).ToList())
            {
                map.Remove(k);
            }
        }

        var failures = map.TryGetValue(key, out var f) ? f.Failures + 1 : 1;
        var over = failures - allowance;
        var delay = over <= 0 ? TimeSpan.Zero : TimeSpan.FromTicks(Math.Min(maxDelay.Ticks, baseDelay.Ticks * (1L << Math.Min(over - 1, 30))));
        map[key] = (failures, now + delay);
    }
}
