using Microsoft.Extensions.Logging;
using Npgsql;

namespace PumpFleet.EventStore.Log;

/// <summary>
/// Listens on the <c>pf_log</c> channel (migration 007: one NOTIFY per committed append and partition) on one
/// dedicated connection per process, never a pooled one (<see cref="UnpooledConnections"/>: a LISTEN handed back to
/// the pool would stay with its next borrower), and counts notifications per partition, so a partition's reader can tell
/// "something was committed since I last looked" without a query. While the connection is down nothing can be
/// heard, so every (re)connection and every failure counts as a notification for every partition: readers then
/// read once and fall back to polling until the listener is back.
/// </summary>
public sealed partial class LogNotificationListener(UnpooledConnections connections, ILogger<LogNotificationListener> logger) : IAsyncDisposable
{
    /// <summary>The channel the append trigger notifies; the payload is the partition number.</summary>
    public const string Channel = "pf_log";

    private static readonly TimeSpan RetryDelay = TimeSpan.FromSeconds(1);
    private readonly long[] _counts = new long[LogPartitioning.Count];
    private readonly CancellationTokenSource _stop = new();
    private readonly Lock _gate = new();
    private Task? _loop;
    private long _connected;

    /// <summary>Notifications seen for <paramref name="partition"/> so far (compare with an earlier value).</summary>
    public long CountOf(int partition) => Interlocked.Read(ref _counts[partition]);

    /// <summary>True while the LISTEN connection is up (a test and a health signal; readers poll meanwhile anyway).</summary>
    public bool IsListening => Interlocked.Read(ref _connected) == 1;

    /// <summary>Starts listening (once per process; later calls do nothing).</summary>
    public void EnsureStarted()
    {
        lock (_gate)
        {
            _loop ??= Task.Run(() => RunAsync(_stop.Token));
        }
    }

    private async Task RunAsync(CancellationToken ct)
    {
        while (!ct.IsCancellationRequested)
        {
            try
            {
                await using var conn = await connections.OpenAsync(ct);
                conn.Notification += OnNotification;
                await using (var cmd = new NpgsqlCommand($"LISTEN {Channel}", conn))
                {
                    await cmd.ExecuteNonQueryAsync(ct);
                }

                Interlocked.Exchange(ref _connected, 1);
                LogListening(logger);
                // Anything committed while we were not listening was not heard: wake every partition once.
                NotifyAll();
                while (!ct.IsCancellationRequested)
                {
                    await conn.WaitAsync(ct);
                }
            }
            catch (OperationCanceledException) when (ct.IsCancellationRequested)
            {
                return;
            }
            catch (Exception e)
            {
                Interlocked.Exchange(ref _connected, 0);
                NotifyAll();
                LogListenFailed(logger, e);
                try
                {
                    await Task.Delay(RetryDelay, ct);
                }
                catch (OperationCanceledException)
                {
                    return;
                }
            }
        }
    }

    private void OnNotification(object sender, NpgsqlNotificationEventArgs e)
    {
        if (int.TryParse(e.Payload, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var p)
            && p is >= 0 and < LogPartitioning.Count)
        {
            Interlocked.Increment(ref _counts[p]);
        }
        else
        {
            NotifyAll();
        }
    }

    private void NotifyAll()
    {
        for (var p = 0; p < _counts.Length; p++)
        {
            Interlocked.Increment(ref _counts[p]);
        }
    }

    /// <inheritdoc />
    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        if (_loop is not null)
        {
            // The loop was started by this object (EnsureStarted) and only ends on _stop.
#pragma warning disable VSTHRD003
            await _loop.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
#pragma warning restore VSTHRD003
        }

        _stop.Dispose();
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Listening for committed appends on channel pf_log")]
    private static partial void LogListening(ILogger logger);

    [LoggerMessage(Level = LogLevel.Warning, Message = "LISTEN pf_log failed; readers poll until it is back")]
    private static partial void LogListenFailed(ILogger logger, Exception exception);
}
