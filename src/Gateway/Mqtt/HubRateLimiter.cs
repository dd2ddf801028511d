namespace PumpFleet.Gateway.Mqtt;

/// <summary>
/// A token bucket per hub: <c>rate</c> messages a second on average, bursts up to <c>burst</c>. A hub over its rate
/// is disconnected without a PUBACK (reason <c>rate-limited</c>): it resends after its reconnect backoff, so nothing
/// is lost, and one hub cannot take the in-flight slots of all others.
/// </summary>
internal sealed class HubRateLimiter(TimeProvider time, double rate, double burst)
{
    private const int MaxTracked = 100_000;
    private readonly Lock _lock = new();
    private readonly Dictionary<string, (double Tokens, long At)> _buckets = new(StringComparer.Ordinal);

    /// <summary>Takes one token for <paramref name="hubId"/>; false when the hub is over its rate.</summary>
    public bool TryTake(string hubId)
    {
        var now = time.GetTimestamp();
        lock (_lock)
        {
            if (_buckets.Count >= MaxTracked && !_buckets.ContainsKey(hubId))
            {
                _buckets.Clear(); // a fresh bucket is full: the worst case is one extra burst per hub
            }

            var (tokens, at) = _buckets.TryGetValue(hubId, out var b) ? b : (burst, now);
            tokens = Math.Min(burst, tokens + (time.GetElapsedTime(at, now).TotalSeconds * rate));
            if (tokens < 1)
            {
                _buckets[hubId] = (tokens, now);
                return false;
            }

            _buckets[hubId] = (tokens - 1, now);
            return true;
        }
    }
}
