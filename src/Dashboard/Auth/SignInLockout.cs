using System.Collections.Concurrent;

namespace PumpFleet.Dashboard.Auth;

/// <summary>
/// Locks a user name out after <see cref="MaxFailures"/> failed sign-ins within <see cref="Window"/>, for
/// <see cref="Window"/>, even with the right password afterwards: guessing a password then costs hours, not
/// seconds. Per dashboard replica (the per-address rate limiter in front of it bounds the total).
/// </summary>
internal sealed class SignInLockout(TimeProvider time)
{
    public const int MaxFailures = 5;
    public static readonly TimeSpan Window = TimeSpan.FromMinutes(15);

    private readonly ConcurrentDictionary<string, Failures> _failures = new(StringComparer.Ordinal);

    public bool IsLockedOut(string user) =>
        _failures.TryGetValue(user, out var f) && f.Count >= MaxFailures && time.GetUtcNow() - f.Last < Window;

    public void Failed(string user)
    {
        var now = time.GetUtcNow();
        _failures.AddOrUpdate(user, _ => new Failures(1, now), (_, f) => now - f.Last >= Window ? new Failures(1, now) : new Failures(f.Count + 1, now));
        // Unknown names also count (so probing names is throttled too); old entries are dropped so the map stays small.
        if (_failures.Count > 10_000)
        {
            foreach (var (k, v) in _failures)
            {
                if (now - v.Last >= Window)
                {
                    _failures.TryRemove(k, out _);
                }
            }
        }
    }

    public void Succeeded(string user) => _failures.TryRemove(user, out _);

    private sealed record Failures(int Count, DateTimeOffset Last);
}
