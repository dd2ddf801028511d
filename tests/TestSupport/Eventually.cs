using System.Diagnostics;

namespace PumpFleet.TestSupport;

/// <summary>Polls a condition until it holds or a deadline passes (never a fixed sleep as synchronisation).</summary>
public static class Eventually
{
    /// <summary>Polls <paramref name="condition"/> every <paramref name="interval"/> until true; throws after <paramref name="timeout"/>.</summary>
    public static async Task TrueAsync(Func<Task<bool>> condition, TimeSpan timeout, string what, TimeSpan? interval = null)
    {
        var sw = Stopwatch.StartNew();
        Exception? last = null;
        while (sw.Elapsed < timeout)
        {
            try
            {
                if (await condition())
                {
                    return;
                }
            }
            catch (Exception e) when (e is not OutOfMemoryException)
            {
                last = e;
            }

            await Task.Delay(interval ?? TimeSpan.FromMilliseconds(50));
        }

        throw new TimeoutException($"Timed out after {timeout} waiting for: {what}", last);
    }
}
