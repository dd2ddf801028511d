namespace PumpFleet.ReadModels;

/// <summary>The one periodic loop of the fleet jobs: run now, then every interval, until the host stops.</summary>
internal static class FleetJobLoop
{
    /// <summary>
    /// Runs <paramref name="once"/> at start and at every tick of <paramref name="interval"/> (on
    /// <paramref name="time"/>). A failed run is reported to <paramref name="failed"/> and retried at the next tick:
    /// every run re-derives its work from the read models, so nothing is lost by skipping one.
    /// </summary>
    public static async Task RunAsync(
        TimeSpan interval, TimeProvider time, Func<CancellationToken, Task> once, Action<Exception> failed, CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(interval, time);
        do
        {
            try
            {
                await once(stoppingToken);
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                failed(e);
            }
        }
        while (await timer.WaitForNextTickAsync(stoppingToken));
    }
}
