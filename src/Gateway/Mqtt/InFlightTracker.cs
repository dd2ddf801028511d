using PumpFleet.Gateway.Ingest;

namespace PumpFleet.Gateway.Mqtt;

/// <summary>Counts messages being processed and lets shutdown await the moment none is left.</summary>
internal sealed class InFlightTracker(GatewayInstruments instruments)
{
    private readonly Lock _lock = new();
    private int _count;
    private TaskCompletionSource? _idle;

    public int Count
    {
        get
        {
            lock (_lock)
            {
                return _count;
            }
        }
    }

    public void Enter()
    {
        lock (_lock)
        {
            _count++;
        }

        instruments.OnInFlightStarted();
    }

    public void Exit()
    {
        TaskCompletionSource? idle = null;
        lock (_lock)
        {
            if (--_count == 0)
            {
                idle = _idle;
                _idle = null;
            }
        }

        instruments.OnInFlightEnded();
        idle?.TrySetResult();
    }

    public Task WaitIdleAsync(CancellationToken ct)
    {
        lock (_lock)
        {
            if (_count == 0)
            {
                return Task.CompletedTask;
            }

            _idle ??= new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            return _idle.Task.WaitAsync(ct);
        }
    }
}
