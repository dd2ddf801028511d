using System.Net;
using System.Text.Json.Nodes;
using Microsoft.Playwright;
using static Microsoft.Playwright.Assertions;

namespace PumpFleet.Dashboard.Tests;

/// <summary>The fleet overview: server-side aggregates that agree with the read models, drawn as inline SVG on the fleet page.</summary>
public sealed class OverviewTests(DashboardApp app, BrowserFixture browser)
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private async Task<JsonNode> GetJsonAsync(string path)
    {
        using var res = await app.Http.GetAsync(path, Ct);
        Assert.True(res.IsSuccessStatusCode, $"{path}: {(int)res.StatusCode} {await res.Content.ReadAsStringAsync(Ct)}");
        return JsonNode.Parse(await res.Content.ReadAsStringAsync(Ct))!;
    }

    [Fact]
    public async Task Overview_AgreesWithTheReadModels()
    {
        var o = await GetJsonAsync("/api/fleet/overview?days=10");
        var days = o["days"]!.AsArray();
        Assert.Equal(10, days.Count);
        Assert.Equal(DateTime.UtcNow.ToString("yyyy-MM-dd", System.Globalization.CultureInfo.InvariantCulture), days[^1]!.GetValue<string>());
        Assert.Equal(10, o["pumpsReportingByDay"]!.AsArray().Count);

        // Open at the end of today: every anomaly not resolved (the seed's are all in the past).
        var openNow = o["openAnomaliesByKind"]!.AsArray().Sum(k => k!["open"]!.AsArray()[^1]!.GetValue<long>());
        Assert.Equal(await app.CountAsync("SELECT count(*) FROM pf_anomalies WHERE resolved_at IS NULL AND detected_at < now()"), openNow);
        Assert.All(o["openAnomaliesByKind"]!.AsArray(), k => Assert.Equal(10, k!["open"]!.AsArray().Count));

        // Every pump not explanted is in one refill bucket.
        var buckets = o["refillDue"]!.AsArray();
        Assert.Equal(await app.CountAsync("SELECT count(*) FROM pf_pump_status WHERE status <> 'inactive'"), buckets.Sum(b => b!["pumps"]!.GetValue<long>()));
        Assert.Equal(["overdue", "0–7 d", "7–14 d", "14–30 d", "30–60 d", "60 d+", "none"], buckets.Select(b => b!["label"]!.GetValue<string>()));

        // The seeded pumps last reported days ago: all silent by the 24 h window.
        Assert.Equal(await app.CountAsync("SELECT count(*) FROM pf_pump_status WHERE status <> 'inactive' AND last_seen_at < now() - interval '24 hours'"),
            o["silentPumps"]!.GetValue<long>());

        using var bad = await app.Http.GetAsync("/api/fleet/overview?days=0", Ct);
        Assert.Equal(HttpStatusCode.BadRequest, bad.StatusCode);
    }

    [Fact]
    public async Task FleetPage_DrawsTheOverviewCharts_AsInlineSvg()
    {
        var context = await browser.RequireBrowser().NewContextAsync(new BrowserNewContextOptions { BaseURL = app.BaseAddress.ToString(), ViewportSize = new() { Width = 1366, Height = 768 } });
        await using var _ = context;
        var page = await context.NewPageAsync();
        var external = new List<string>();
        page.Request += (_, r) => { if (!r.Url.StartsWith(app.BaseAddress.ToString(), StringComparison.Ordinal)) external.Add(r.Url); };
        await page.GotoAsync("/");
        await Expect(page.Locator("body[data-overview=true]")).ToHaveCountAsync(1, new() { Timeout = 20_000 });
        await Expect(page.Locator(".overview svg[role=img]")).ToHaveCountAsync(4);
        var kinds = (await GetJsonAsync("/api/fleet/overview?days=30"))["openAnomaliesByKind"]!.AsArray().Count;
        await Expect(page.Locator("#chart-anomalies polyline")).ToHaveCountAsync(kinds);
        await Expect(page.Locator("#chart-refill rect")).ToHaveCountAsync(7);
        await Expect(page.Locator("#silent-now")).ToContainTextAsync("not heard from");
        await page.ScreenshotAsync(new() { Path = Path.Combine(BrowserFixture.ScreenshotDirectory, "fleet-overview.png"), FullPage = true });
        Assert.Empty(external);
    }
}
