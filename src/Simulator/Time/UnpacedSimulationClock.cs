namespace PumpFleet.Simulator.Time;

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
