using Microsoft.Playwright;

namespace PumpFleet.LiveBench;

/// <summary>A page open on the live Alerts page, in a context of its own, and its clock's offset from the bench's.</summary>
internal sealed record OpenPage(IBrowserContext Context, IPage Page, double OffsetMs, double UncertaintyMs);

/// <summary>
/// One headless Chromium (Debian's, through Playwright; no download). Each page gets a browser context of its own:
/// Chromium allows six HTTP/1.1 connections per host and profile, and every open page holds one for its event stream,
/// so pages sharing a context would queue behind each other's streams.
/// </summary>
internal sealed class Browser : IAsyncDisposable
{
    // Runs before the page's scripts: every EventSource records when each 'anomaly' message is dispatched, on the
    // page's clock (ms since the Unix epoch), before the page's own handlers run, with the message's trace (the
    // server's stamps, Dashboard:LiveTimings) when it has one; and when it got its first summary.
    private const string Recorder = """
        (() => {
          window.__pfArrivals = [];
          window.__pfConnected = false;
          const Native = window.EventSource;
          window.EventSource = class extends Native {
            constructor(url, init) {
              super(url, init);
              this.addEventListener('anomaly', e => {
                const t = performance.timeOrigin + performance.now();
                const a = JSON.parse(e.data);
                window.__pfArrivals.push([a.id + ':' + a.status, t, a.trace ?? null]);
              });
              this.addEventListener('fleet', () => { window.__pfConnected = true; });
            }
          };
        })();
        """;

    private readonly IPlaywright _playwright;
    private readonly IBrowser _browser;

    private Browser(IPlaywright playwright, IBrowser browser)
    {
        _playwright = playwright;
        _browser = browser;
    }

    public static async Task<Browser> LaunchAsync()
    {
        var playwright = await Playwright.CreateAsync();
        var browser = await playwright.Chromium.LaunchAsync(new BrowserTypeLaunchOptions
        {
            ExecutablePath = Environment.GetEnvironmentVariable("CHROMIUM_PATH") ?? "/usr/bin/chromium",
            Headless = true,
            Args = ["--disable-gpu", "--disable-dev-shm-usage", "--disable-quic", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--no-first-run",
                // Every page counts as in the foreground: no timer or renderer throttling of the pages behind.
                "--disable-background-timer-throttling", "--disable-renderer-backgrounding", "--disable-backgrounding-occluded-windows"],
        });
        return new Browser(playwright, browser);
    }

    /// <summary>Opens <paramref name="count"/> pages on <c>/alerts</c> and waits until each has its event stream.</summary>
    public async Task<List<OpenPage>> OpenAsync(string baseUrl, int count)
    {
        var pages = new List<OpenPage>(count);
        for (var i = 0; i < count; i++)
        {
            var context = await _browser.NewContextAsync();
            await context.AddInitScriptAsync(Recorder);
            var page = await context.NewPageAsync();
            await page.GotoAsync($"{baseUrl}/alerts");
            await WaitUntilAsync(page, "window.__pfConnected === true", TimeSpan.FromSeconds(60));
            var (offset, uncertainty) = await ClockOffsetAsync(page);
            pages.Add(new OpenPage(context, page, offset, uncertainty));
        }

        return pages;
    }

    public async Task CloseAsync(IEnumerable<OpenPage> pages)
    {
        foreach (var p in pages)
        {
            await p.Context.CloseAsync();
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _browser.DisposeAsync();
        _playwright.Dispose();
    }

    // Polls with evaluate (Playwright's WaitForFunction evaluates a string, which the dashboard's CSP forbids).
    public static async Task WaitUntilAsync(IPage page, string condition, TimeSpan timeout)
    {
        var sw = System.Diagnostics.Stopwatch.StartNew();
        while (!await page.EvaluateAsync<bool>(condition))
        {
            if (sw.Elapsed > timeout)
            {
                throw new TimeoutException($"'{condition}' still false after {timeout}.");
            }

            await Task.Delay(100);
        }
    }

    // The page's clock (performance.timeOrigin + performance.now(): wall time at navigation plus a monotonic clock)
    // read between two readings of the bench's; the tightest of 20 brackets gives the offset and its uncertainty
    // (half the bracket). Both run on this machine's one clock, so the offset is expected near zero; measuring it
    // instead of assuming it also catches a drift of the page's monotonic clock from wall time.
    private static async Task<(double Offset, double Uncertainty)> ClockOffsetAsync(IPage page)
    {
        var best = (Offset: 0.0, Width: double.MaxValue);
        for (var i = 0; i < 20; i++)
        {
            var before = Clock.NowMs();
            var inPage = await page.EvaluateAsync<double>("performance.timeOrigin + performance.now()");
            var after = Clock.NowMs();
            if (after - before < best.Width)
            {
                best = (inPage - ((before + after) / 2), after - before);
            }
        }

        return (best.Offset, best.Width / 2);
    }
}

/// <summary>The bench's wall clock in ms since the Unix epoch (the unit of the page's clock).</summary>
internal static class Clock
{
    public static double NowMs() => (DateTime.UtcNow - DateTime.UnixEpoch).TotalMilliseconds;
}
