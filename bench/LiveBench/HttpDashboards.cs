using System.Net.ServerSentEvents;

namespace PumpFleet.LiveBench;

/// <summary>
/// Dashboards without a browser: each one an HTTP client of its own (its own connection, as a browser context has)
/// doing what the live Alerts page does over the network: open <c>/api/live</c>, and on each <c>fleet</c> message,
/// 100 ms later (the page's debounce, wwwroot/app/common.js), re-read the page's three lists
/// (wwwroot/app/alerts.js): the open and the acknowledged anomalies and the active critical alarms. Used where a
/// hundred Chromium contexts do not fit the machine; the database sees the same requests.
/// </summary>
internal sealed class HttpDashboards : IAsyncDisposable
{
    private static readonly string[] Lists =
        ["/api/anomalies?status=open&", "/api/anomalies?status=acknowledged&", "/api/alarms?active=true&severity=critical"];

    private readonly CancellationTokenSource _stop = new();
    private readonly List<HttpClient> _clients = [];
    private readonly List<Task> _loops = [];
    private long _reloads;
    private long _failures;
    private int _connected;

    /// <summary>Page reloads (three list requests each) done so far.</summary>
    public long Reloads => Interlocked.Read(ref _reloads);

    /// <summary>Failed requests so far.</summary>
    public long Failures => Interlocked.Read(ref _failures);

    /// <summary>Opens <paramref name="count"/> dashboards and waits until each has its first summary.</summary>
    public static async Task<HttpDashboards> OpenAsync(string baseUrl, int count, TimeSpan timeout)
    {
        var d = new HttpDashboards();
        for (var i = 0; i < count; i++)
        {
            var client = new HttpClient(new SocketsHttpHandler { PooledConnectionLifetime = Timeout.InfiniteTimeSpan })
            {
                BaseAddress = new Uri(baseUrl),
                Timeout = Timeout.InfiniteTimeSpan,
            };
            d._clients.Add(client);
            d._loops.Add(d.RunAsync(client, d._stop.Token));
        }

        var sw = System.Diagnostics.Stopwatch.StartNew();
        while (Volatile.Read(ref d._connected) < count)
        {
            if (sw.Elapsed > timeout)
            {
                throw new TimeoutException($"{d._connected} of {count} dashboards connected after {timeout}.");
            }

            await Task.Delay(100);
        }

        return d;
    }

    private async Task RunAsync(HttpClient client, CancellationToken ct)
    {
        try
        {
            // The page's first load, then its live channel.
            await ReloadAsync(client, ct);
            using var response = await client.GetAsync("/api/live", HttpCompletionOption.ResponseHeadersRead, ct);
            response.EnsureSuccessStatusCode();
            await using var body = await response.Content.ReadAsStreamAsync(ct);
            var first = true;
            var latest = 0L;
            await foreach (var item in SseParser.Create(body).EnumerateAsync(ct))
            {
                if (item.EventType != "fleet")
                {
                    continue;
                }

                if (first)
                {
                    first = false;
                    Interlocked.Increment(ref _connected);
                }

                // As the page: a newer message within 100 ms replaces the pending reload.
                var mine = Interlocked.Increment(ref latest);
                _ = Task.Run(async () =>
                {
                    await Task.Delay(100, CancellationToken.None);
                    if (Interlocked.Read(ref latest) == mine && !ct.IsCancellationRequested)
                    {
                        await ReloadAsync(client, ct);
                    }
                }, CancellationToken.None);
            }
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
            // Closed.
        }
    }

    private async Task ReloadAsync(HttpClient client, CancellationToken ct)
    {
        try
        {
            await Task.WhenAll(Lists.Select(async url =>
            {
                using var r = await client.GetAsync(url, ct);
                if (!r.IsSuccessStatusCode)
                {
                    Interlocked.Increment(ref _failures);
                }

                await r.Content.ReadAsByteArrayAsync(ct);
            }));
            Interlocked.Increment(ref _reloads);
        }
        catch (HttpRequestException)
        {
            Interlocked.Increment(ref _failures);
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
            // Closed while reloading.
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        try
        {
            await Task.WhenAll(_loops);
        }
        catch (Exception e) when (e is OperationCanceledException or HttpRequestException or IOException)
        {
            // Closing.
        }

        foreach (var c in _clients)
        {
            c.Dispose();
        }

        _stop.Dispose();
    }
}
