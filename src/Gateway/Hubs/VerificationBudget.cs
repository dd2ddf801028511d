namespace PumpFleet.Gateway.Hubs;

/// <summary>
/// A token bucket of unproven credential checks for the whole gateway instance. A connection attempt whose
/// password this instance has not verified before takes a token before the registry is read and PBKDF2 runs; when
/// none is left the attempt is refused at once, so a wrong-password flood from any number of addresses and hub ids
/// costs at most <c>rate</c> database reads and hashes a second. A check that succeeds gives its token back: the
/// budget limits failures (and unproven checks in flight), not honest reconnect storms, which the hashing pool paces.
/// </summary>
public sealed class VerificationBudget
{
    private readonly TimeProvider _time;
    private readonly double _perSecond;
    private readonly double _burst;
    private readonly Lock _lock = new();
    private double _tokens;
    private long _last;

    /// <summary>A full bucket of <paramref name="burst"/> tokens, refilled at <paramref name="perSecond"/>.</summary>
    public VerificationBudget(TimeProvider time, double perSecond, double burst)
    {
        ArgumentNullException.ThrowIfNull(time);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(perSecond);
        ArgumentOutOfRangeException.ThrowIfLessThan(burst, 1);
        _time = time;
        _perSecond = perSecond;
        _burst = burst;
        _tokens = burst;
        _last = time.GetTimestamp();
    }

    /// <summary>Tokens left now (for tests and logs).</summary>
    public double Available
    {
        get
        {
            lock (_lock)
            {
                Refill();
                return _tokens;
            }
        }
    }

    /// <summary>Takes a token; false when the budget is exhausted (refuse the attempt without reading or hashing).</summary>
    public bool TryTake()
    {
        lock (_lock)
        {
            Refill();
            if (_tokens < 1)
            {
                return false;
            }

            _tokens -= 1;
            return true;
        }
    }

    /// <summary>Gives back a token taken by a check that did not fail (it succeeded, or it never ran).</summary>
    public void Return()
    {
        lock (_lock)
        {
            Refill();
            _tokens = Math.Min(_burst, _tokens + 1);
        }
    }

    private void Refill()
    {
        var now = _time.GetTimestamp();
        var elapsed = _time.GetElapsedTime(_last, now);
        _last = now;
        if (elapsed > TimeSpan.Zero)
        {
            _tokens = Math.Min(_burst, _tokens + elapsed.TotalSeconds * _perSecond);
        }
    }
}
