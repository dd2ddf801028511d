namespace PumpFleet.Simulator.Time;

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
