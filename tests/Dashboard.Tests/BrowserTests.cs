using Microsoft.Playwright;
using PumpFleet.TestSupport;
using static Microsoft.Playwright.Assertions;

namespace PumpFleet.Dashboard.Tests;

/// <summary>The UI in a real headless Chromium against the app on a real Kestrel port; screenshots under TestResults/screenshots.</summary>
public sealed class BrowserTests(DashboardApp app, BrowserFixture browser)
{
    private async Task<(IBrowserContext Context, IPage Page)> OpenAsync(string path)
    {
        var context = await browser.RequireBrowser().NewContextAsync(new BrowserNewContextOptions { BaseURL = app.BaseAddress.ToString(), ViewportSize = new() { Width = 1400, Height = 1000 } });
        var page = await context.NewPageAsync();
        var errors = new List<string>();
        page.PageError += (_, e) => errors.Add(e);
        await page.GotoAsync(path);
        await Expect(page.Locator("body[data-loaded=true]")).ToHaveCountAsync(1, new() { Timeout = 20_000 });
        Assert.Empty(errors);
        return (context, page);
    }

    private static Task ShotAsync(IPage page, string name) =>
        page.ScreenshotAsync(new() { Path = Path.Combine(BrowserFixture.ScreenshotDirectory, name + ".png"), FullPage = true });

    [Fact]
    public async Task FleetPage_ShowsTheSeededPumps_AndAFilterNarrowsTheTable()
    {
        var (context, page) = await OpenAsync("/");
        await using var _ = context;
        var rows = page.Locator("#pumps tbody tr[data-serial]");
        await Expect(rows).ToHaveCountAsync(DashboardApp.Pumps);
        await Expect(page.Locator("#page-info")).ToContainTextAsync($"{DashboardApp.Pumps} pumps");
        // Pumps needing attention come first.
        await Expect(rows.First.Locator(".badge")).ToHaveTextAsync("critical");
        await ShotAsync(page, "fleet");

        await page.SelectOptionAsync("#filter-status", "critical");
        var critical = (int)await app.CountAsync("SELECT count(*) FROM pf_pump_status WHERE status = 'critical'");
        Assert.InRange(critical, 1, DashboardApp.Pumps - 1);
        await Expect(rows).ToHaveCountAsync(critical);
        await Expect(page.Locator("#page-info")).ToContainTextAsync($"{critical} pumps");

        await page.SelectOptionAsync("#filter-status", "");
        await page.FillAsync("#filter-q", "SN001");
        await Expect(rows).ToHaveCountAsync(10);
        await ShotAsync(page, "fleet-filtered");
    }

    [Fact]
    public async Task PumpPage_DrawsItsCharts()
    {
        var (context, page) = await OpenAsync("/pump?serial=SN0001");
        await using var _ = context;
        foreach (var id in new[] { "flow-chart", "reservoir-chart", "timeline-chart" })
        {
            var drawn = await page.EvaluateAsync<bool>("""
                id => {
                  const chart = Chart.getChart(id);
                  if (!chart || !chart.data.datasets.some(d => d.data.length > 0)) return false;
                  const c = document.getElementById(id);
                  const px = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
                  let painted = 0;
                  for (let i = 3; i < px.length; i += 4) if (px[i] !== 0) painted++;
                  return painted > 500;
                }
                """, id);
            Assert.True(drawn, $"canvas #{id} is not drawn");
        }

        await Expect(page.Locator("#events tbody tr")).ToHaveCountAsync(app.Seed.DeviceEvents(1).Count);
        await Expect(page.Locator("#state")).ToContainTextAsync("implanted");
        await ShotAsync(page, "pump");

        // Time travel: the state at hour 30.5 shows the LOW_RESERVOIR alarm that was cleared at hour 40.
        await page.FillAsync("#asof", app.Seed.Start.AddHours(30).AddMinutes(30).UtcDateTime.ToString("yyyy-MM-ddTHH:mm", System.Globalization.CultureInfo.InvariantCulture));
        await page.ClickAsync("#asof-go");
        await Expect(page.Locator("#asof-label")).ToContainTextAsync("as of");
        await Expect(page.Locator("#state")).ToContainTextAsync("LOW_RESERVOIR");
        await ShotAsync(page, "pump-as-of");
    }

    [Fact]
    public async Task AlertsPage_AcknowledgingRemovesTheAnomalyFromTheOpenQueue()
    {
        var (context, page) = await OpenAsync("/alerts");
        await using var _ = context;
        var row = page.Locator("#anomalies tbody tr[data-id='A-SN0012-flow']");
        await Expect(row).ToHaveCountAsync(1);
        await Expect(page.Locator("#critical-alarms tbody tr")).Not.ToHaveCountAsync(0);
        await ShotAsync(page, "alerts");

        await row.Locator("input.note").FillAsync("clinic called");
        await row.Locator("button.ack").ClickAsync();
        await Expect(row).ToHaveCountAsync(0);
        await Expect(page.Locator("#acknowledged tbody tr[data-id='A-SN0012-flow']")).ToHaveCountAsync(1, new() { Timeout = 20_000 });
        // The acknowledgement is an event; the read model follows when the projection's next page runs.
        await Eventually.TrueAsync(async () => await app.CountAsync(
                "SELECT count(*) FROM pf_anomalies WHERE id = 'A-SN0012-flow' AND status = 'acknowledged' AND note = 'clinic called'") == 1,
            TimeSpan.FromSeconds(20), "the acknowledgement in pf_anomalies");
        // A fresh load agrees: the open queue no longer has it.
        await page.ReloadAsync();
        await Expect(page.Locator("body[data-loaded=true]")).ToHaveCountAsync(1);
        await Expect(page.Locator("#anomalies tbody tr[data-id='A-SN0012-flow']")).ToHaveCountAsync(0);
        await ShotAsync(page, "alerts-after-ack");
    }

    [Fact]
    public async Task SurveillancePage_ShowsCohortRatesWithIntervals()
    {
        var (context, page) = await OpenAsync("/surveillance");
        await using var _ = context;
        await Expect(page.Locator("#cohorts tbody tr")).Not.ToHaveCountAsync(0);
        await Expect(page.Locator("#fleet-rate")).ToContainTextAsync("per 1000 pump-days");
        // The multiplicity control is named on the page, with its rate.
        await Expect(page.Locator("#method")).ToContainTextAsync("Benjamini–Hochberg");
        await Expect(page.Locator("#method")).ToContainTextAsync("q = 0.05");
        Assert.True(await page.EvaluateAsync<bool>("() => Chart.getChart('rates-chart').data.labels.length > 0"));
        await page.SelectOptionAsync("#by", "model");
        await Expect(page.Locator("#cohorts tbody tr")).ToHaveCountAsync(3);
        // The new dimensions: two drugs, one implant-age band; pumps affected with their interval.
        // (Other tests of the run may add pumps of their own, so rows are found by their cohort, not counted.)
        await page.SelectOptionAsync("#by", "drug");
        await Expect(page.Locator("#cohorts tbody tr", new() { HasText = "baclofen" })).ToHaveCountAsync(1);
        await page.SelectOptionAsync("#metric", "anomalies");
        // Pumps affected with its share: the seed gives 2 of 10 morphine pumps; another test may add a third (the
        // alerts page test opens a 'silent' anomaly on SN0009), so either count, shown as "k = k0.0 %".
        await Expect(page.Locator("#cohorts tbody tr", new() { HasText = "morphine" })).ToContainTextAsync(new System.Text.RegularExpressions.Regex("(2 = 20\\.0 %|3 = 30\\.0 %)"));
        await page.SelectOptionAsync("#by", "implantAge");
        await Expect(page.Locator("#cohorts tbody tr", new() { HasText = "0-6 months" })).ToHaveCountAsync(1);

        // Kaplan–Meier: one curve and band per drug, to the first flow stall; morphine drops to 0.8.
        await page.SelectOptionAsync("#km-by", "drug");
        await page.SelectOptionAsync("#km-endpoint", "anomaly:flow-stall");
        await Expect(page.Locator("#km-chart svg path[data-curve='morphine']")).ToHaveCountAsync(1);
        await Expect(page.Locator("#km-chart svg path[data-curve='baclofen']")).ToHaveCountAsync(1);
        await Expect(page.Locator("#km-chart svg polygon[data-band='morphine']")).ToHaveCountAsync(1);
        await Expect(page.Locator("#km-method")).ToContainTextAsync("Kaplan–Meier");
        await Expect(page.Locator("#km-method")).ToContainTextAsync("log-log");
        await Expect(page.Locator("#km-table tbody tr", new() { HasText = "morphine" })).ToContainTextAsync("0.800");
        await ShotAsync(page, "surveillance");
    }

    [Fact]
    public async Task FleetPage_UpdatesLive_WhenNewEventsArrive()
    {
        var (context, page) = await OpenAsync("/");
        await using var _ = context;
        await page.SelectOptionAsync("#filter-status", "critical");
        var before = (int)await app.CountAsync("SELECT count(*) FROM pf_pump_status WHERE status = 'critical'");
        await Expect(page.Locator("#pumps tbody tr[data-serial]")).ToHaveCountAsync(before);

        // A pump raises a critical alarm; the page must show it without a reload.
        var grains = app.App.Services.GetRequiredService<IGrainFactory>();
        var serial = app.Seed.Serials[4];
        var state = await grains.GetGrain<Contracts.Grains.IPumpQueryGrain>(serial).GetStateAsync();
        Assert.NotEqual("critical", state.Status);
        var alarm = new Contracts.Events.AlarmRaised { Seq = state.LastSeq + 1, At = state.LastEventAt!.Value.AddMinutes(5), Code = "CATHETER_OCCLUSION", Severity = "critical" };
        await grains.GetGrain<Contracts.Grains.IPumpIngestGrain>(serial).IngestAsync(app.Seed.Batch(4, [alarm], DateTimeOffset.UtcNow, withDevice: false));

        await Expect(page.Locator($"#pumps tbody tr[data-serial='{serial}']")).ToHaveCountAsync(1, new() { Timeout = 20_000 });
        await Expect(page.Locator("#pumps tbody tr[data-serial]")).ToHaveCountAsync(before + 1);
    }

    [Fact]
    public async Task AlertsPage_ShowsAnAnomalyRaisedThroughTheGrain_PushedWithoutReload()
    {
        var (context, page) = await OpenAsync("/alerts");
        await using var _ = context;
        var serial = app.Seed.Serials[9];
        var rows = page.Locator($"#anomalies tbody tr[data-id^='{serial}:silent:']");
        await Expect(rows).ToHaveCountAsync(0);
        var feed = app.App.Services.GetRequiredService<Live.LiveFeed>();
        Assert.True(feed.Subscribed, $"subscribed; browsers {feed.Browsers}");

        // The pump's grain opens a 'silent' anomaly (an anomaly.detected event in its stream).
        var grains = app.App.Services.GetRequiredService<IGrainFactory>();
        var state = await grains.GetGrain<Contracts.Grains.IPumpQueryGrain>(serial).GetStateAsync();
        Assert.True(await grains.GetGrain<Contracts.Grains.IPumpMonitorGrain>(serial).MarkSilentAsync(state.LastSeenAt!.Value, TimeSpan.FromHours(24)));

        // It appears in the open page without a reload, marked 'live': only an anomaly message pushed from the log
        // stream marks a row (rows read from the API never are), so this holds whichever arrives first.
        await Expect(rows).ToHaveCountAsync(1, new() { Timeout = 20_000 });
        await Expect(page.Locator($"#anomalies tbody tr.live[data-id^='{serial}:silent:']")).ToHaveCountAsync(1, new() { Timeout = 20_000 });
        await Expect(rows.First).ToContainTextAsync("silent");
        var id = await rows.First.GetAttributeAsync("data-id");
        await ShotAsync(page, "alerts-pushed");

        // The read model follows, and the row stays; a resolution through the grain takes it away again.
        await Eventually.TrueAsync(async () => await app.CountAsync($"SELECT count(*) FROM pf_anomalies WHERE id = '{id}' AND status = 'open'") == 1,
            TimeSpan.FromSeconds(20), "the silent anomaly in pf_anomalies");
        Assert.True(await grains.GetGrain<Contracts.Grains.IPumpAnomalyGrain>(serial).ResolveAnomalyAsync(id!, "test", "data arrived"));
        await Expect(rows).ToHaveCountAsync(0, new() { Timeout = 20_000 });
    }
    // Counts the page's requests whose path starts with one of these, from now on.
    private static Func<int> CountRequests(IPage page, params string[] paths)
    {
        var count = 0;
        page.Request += (_, r) =>
        {
            var path = new Uri(r.Url).AbsolutePath;
            if (paths.Any(p => path.StartsWith(p, StringComparison.Ordinal)))
            {
                Interlocked.Increment(ref count);
            }
        };
        return () => Volatile.Read(ref count);
    }

    // Until the page handled the summary of the read models' current version (its handler ran after they had
    // everything written so far).
    private Task CurrentSummaryHandledAsync(IPage page) =>
        Eventually.TrueAsync(async () =>
        {
            var current = (await app.App.Services.GetRequiredService<Caching.ReadModelVersion>().CurrentAsync(TimeSpan.Zero, default)).Version;
            return await page.EvaluateAsync<string?>("document.body.dataset.liveHandled ?? null") == current;
        }, TimeSpan.FromSeconds(20), "the page handled the current summary");

    [Fact]
    public async Task AlertsPage_AppliesPushedAnomalyChanges_WithoutReReadingTheLists()
    {
        var (context, page) = await OpenAsync("/alerts");
        await using var _ = context;
        // The page read its lists at load and again at its live stream's connection; from here on it only applies.
        await Expect(page.Locator("body[data-live-connects='1']")).ToHaveCountAsync(1, new() { Timeout = 20_000 });
        var listReads = CountRequests(page, "/api/anomalies");
        // A baclofen pump no other test raises anomalies on (the surveillance test counts morphine pumps with one).
        var serial = app.Seed.Serials[18];
        var open = page.Locator($"#anomalies tbody tr[data-id^='{serial}:silent:']");
        var acknowledged = page.Locator($"#acknowledged tbody tr[data-id^='{serial}:silent:']");
        await Expect(open).ToHaveCountAsync(0);

        // Opened, acknowledged, resolved through the pump's grain: each change shows from its pushed message alone.
        var grains = app.App.Services.GetRequiredService<IGrainFactory>();
        var state = await grains.GetGrain<Contracts.Grains.IPumpQueryGrain>(serial).GetStateAsync();
        Assert.True(await grains.GetGrain<Contracts.Grains.IPumpMonitorGrain>(serial).MarkSilentAsync(state.LastSeenAt!.Value, TimeSpan.FromHours(24)));
        await Expect(page.Locator($"#anomalies tbody tr.live[data-id^='{serial}:silent:']")).ToHaveCountAsync(1, new() { Timeout = 20_000 });
        var id = await open.First.GetAttributeAsync("data-id");
        await Expect(open.First).ToContainTextAsync("silent");

        Assert.True(await grains.GetGrain<Contracts.Grains.IPumpAnomalyGrain>(serial).AcknowledgeAnomalyAsync(id!, "browser-test", "seen"));
        await Expect(open).ToHaveCountAsync(0, new() { Timeout = 20_000 });
        await Expect(acknowledged).ToHaveCountAsync(1, new() { Timeout = 20_000 });
        await Expect(acknowledged.First).ToContainTextAsync("browser-test");

        Assert.True(await grains.GetGrain<Contracts.Grains.IPumpAnomalyGrain>(serial).ResolveAnomalyAsync(id!, "browser-test", "done"));
        await Expect(acknowledged).ToHaveCountAsync(0, new() { Timeout = 20_000 });

        // The read model catches up and the live channel tells the page (its handler ran on a summary of a version
        // that has the resolution); still no list was read.
        await Eventually.TrueAsync(async () => await app.CountAsync($"SELECT count(*) FROM pf_anomalies WHERE id = '{id}' AND status = 'resolved'") == 1,
            TimeSpan.FromSeconds(20), "the resolution in pf_anomalies");
        await CurrentSummaryHandledAsync(page);
        await Expect(open).ToHaveCountAsync(0);
        await Expect(acknowledged).ToHaveCountAsync(0);
        Assert.Equal(0, listReads());
    }

    [Fact]
    public async Task AlertsPage_ReReadsTheLists_WhenItsLiveStreamReconnects()
    {
        var (context, page) = await OpenAsync("/alerts");
        await using var _ = context;
        await Expect(page.Locator("body[data-live-connects='1']")).ToHaveCountAsync(1, new() { Timeout = 20_000 });
        var listReads = CountRequests(page, "/api/anomalies");

        // The server ends the stream (as it does for a browser that fell behind, or after its subscription was found
        // gone): the browser reconnects by itself, and the page re-reads what it shows.
        var feed = app.App.Services.GetRequiredService<Live.LiveFeed>();
        Assert.True(feed.EndBrowserStreams() >= 1);
        await Expect(page.Locator("body[data-live-connects='2']")).ToHaveCountAsync(1, new() { Timeout = 20_000 });
        Assert.True(listReads() >= 2, $"the open and acknowledged lists re-read: {listReads()} requests");
        await Expect(page.Locator("#anomalies tbody tr").First).ToBeVisibleAsync();
    }

    [Fact]
    public async Task FleetPage_ShowsThePushedSummary_WithoutReadingIt()
    {
        var (context, page) = await OpenAsync("/");
        await using var _ = context;
        await Expect(page.Locator("body[data-live-connects='1']")).ToHaveCountAsync(1, new() { Timeout = 20_000 });
        var summaryReads = CountRequests(page, "/api/fleet/summary");
        var cards = page.Locator("#status-cards");
        var shown = await cards.GetAttributeAsync("data-version");

        // A change of the read models (an anomaly opened and resolved on a pump of its own): the cards follow the
        // pushed summaries.
        var serial = app.Seed.Serials[16];
        var grains = app.App.Services.GetRequiredService<IGrainFactory>();
        var state = await grains.GetGrain<Contracts.Grains.IPumpQueryGrain>(serial).GetStateAsync();
        Assert.True(await grains.GetGrain<Contracts.Grains.IPumpMonitorGrain>(serial).MarkSilentAsync(state.LastSeenAt!.Value, TimeSpan.FromHours(24)));
        await Expect(cards).Not.ToHaveAttributeAsync("data-version", shown ?? "", new() { Timeout = 20_000 });
        Assert.Equal(0, summaryReads());

        // Leave the pump as found: resolve it once the read model has it.
        var id = "";
        await Eventually.TrueAsync(async () =>
        {
            await using var conn = new Npgsql.NpgsqlConnection(app.ConnectionString);
            await conn.OpenAsync();
            await using var cmd = new Npgsql.NpgsqlCommand($"SELECT id FROM pf_anomalies WHERE serial = '{serial}' AND kind = 'silent' AND status = 'open'", conn);
            id = await cmd.ExecuteScalarAsync() as string ?? "";
            return id.Length > 0;
        }, TimeSpan.FromSeconds(20), "the silent anomaly in pf_anomalies");
        Assert.True(await grains.GetGrain<Contracts.Grains.IPumpAnomalyGrain>(serial).ResolveAnomalyAsync(id, "browser-test", "done"));
    }
}
