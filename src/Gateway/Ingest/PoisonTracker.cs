namespace PumpFleet.Gateway.Ingest;

/// <summary>
/// Counts, per hub topic (one pump of one hub), how many messages in a row failed with the same unexpected
/// exception: one that is neither an input error the parser knows nor a dependency failure. Such a failure is
/// retried (the message may be fine and the cause transient) until it repeats <c>PoisonThreshold</c> times in a
/// row; then the message is quarantined as poison and answered, so it cannot wedge the hub forever. In memory
/// and per gateway instance: a restart only grants a few more retries.
/// </summary>
public sealed class PoisonTracker
{
    /// <summary>Tracked topics at most; beyond it the table is cleared (a flood of distinct failures only delays detection).</summary>
    public const int MaxTracked = 10_000;

    private readonly Lock _lock = new();
    private readonly Dictionary<string, (string Fingerprint, int Count)> _failures = new(StringComparer.Ordinal);

    /// <summary>Records a failure; returns how many times in a row this topic failed this way.</summary>
    public int RecordFailure(string hubId, string topic, Exception e)
    {
        var key = hubId + "\n" + topic;
        var fingerprint = Fingerprint(e);
        lock (_lock)
        {
            if (_failures.Count >= MaxTracked && !_failures.ContainsKey(key))
            {
                _failures.Clear();
            }

            var count = _failures.TryGetValue(key, out var f) && f.Fingerprint == fingerprint ? f.Count + 1 : 1;
            _failures[key] = (fingerprint, count);
            return count;
        }
    }

    /// <summary>The topic was handled (stored, rejected or quarantined): its streak ends.</summary>
    public void Clear(string hubId, string topic)
    {
        lock (_lock)
        {
            if (_failures.Count > 0)
            {
                _failures.Remove(hubId + "\n" + topic);
            }
        }
    }

    /// <summary>
    /// "The same way": the innermost exception's type and the method that threw it. Messages are left out because
    /// they often carry ids or times that differ on every attempt.
    /// </summary>
    public static string Fingerprint(Exception e)
    {
        var inner = e;
        while (inner.InnerException is not null)
        {
            inner = inner.InnerException;
        }

        var site = inner.TargetSite is { } m ? $"{m.DeclaringType?.FullName}.{m.Name}" : "?";
        return $"{inner.GetType().FullName}@{site}";
    }
}
