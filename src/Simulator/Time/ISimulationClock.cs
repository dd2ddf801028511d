namespace PumpFleet.Simulator.Time;

/// <summary>Paces the transport along simulated time. Generation never looks at a clock; only the MQTT runner waits.</summary>
public interface ISimulationClock
{
    /// <summary>The current simulated time.</summary>
    DateTimeOffset Now { get; }

    /// <summary>Completes when simulated time has reached <paramref name="simTime"/>.</summary>
    ValueTask WaitUntilAsync(DateTimeOffset simTime, CancellationToken cancellationToken);
}

/// <summary>Simulated time runs <c>speed</c> times faster than the given <see cref="TimeProvider"/>.</summary>
public sealed class ScaledSimulationClock : ISimulationClock
{
    private readonly DateTimeOffset _start;
    private readonly double _speed;
    private readonly TimeProvider _time;
    private readonly long _startTimestamp;

    /// <summary>Starts the clock at <paramref name="start"/> now.</summary>
    public ScaledSimulationClock(DateTimeOffset start, double speed, TimeProvider time)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(speed);
        _start = start;
        _speed = speed;
        _time = time;
        _startTimestamp = time.GetTimestamp();
    }

    /// <inheritdoc/>
    public DateTimeOffset Now => _start + (_time.GetElapsedTime(_startTimestamp) * _speed);

    /// <inheritdoc/>
    public async ValueTask WaitUntilAsync(DateTimeOffset simTime, CancellationToken cancellationToken)
    {
        var wait = (simTime - Now) / _speed;
        if (wait > TimeSpan.Zero)
        {
            await Task.Delay(wait, _time, cancellationToken);
        }
    }
}

/// <summary>As fast as possible: simulated time jumps to whatever is awaited next. Deterministic; used by tests.</summary>
public sealed class UnpacedSimulationClock(DateTimeOffset start) : ISimulationClock
{
    private long _nowTicks = start.UtcTicks;

    /// <inheritdoc/>
    public DateTimeOffset Now => new(Interlocked.Read(ref _nowTicks), TimeSpan.Zero);

    /// <inheritdoc/>
    public ValueTask WaitUntilAsync(DateTimeOffset simTime, CancellationToken cancellationToken)
    {
        cancellationToken.ThrowIfCancellationRequested();
        if (simTime.UtcTicks > Interlocked.Read(ref _nowTicks))
        {
            Interlocked.Exchange(ref _nowTicks, simTime.UtcTicks);
        }

        return ValueTask.CompletedTask;
    }
}
