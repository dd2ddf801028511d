using System.Net;
using PumpFleet.TestSupport;
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
    public async Task DeviceEventsPerDay_EqualASqlCountOverTheLog()
    {
        // The read model directly (the endpoint caches a minute): it follows the log within a few polls.
        var queries = app.App.Services.GetRequiredService<PumpFleet.ReadModels.IReadModelQueries>();
        long[] expected = [], actual = [];
        await Eventually.TrueAsync(async () =>
        {
            var now = DateTimeOffset.UtcNow;
            var o = await queries.FleetOverviewAsync(now, 90, TimeSpan.FromHours(24), Ct);
            actual = o.DeviceEventsByDay!;
            var byDay = new Dictionary<DateOnly, long>();
            await using (var conn = new Npgsql.NpgsqlConnection(app.ConnectionString))
            {
                await conn.OpenAsync(Ct);
                await using var cmd = new Npgsql.NpgsqlCommand(
                    "SELECT (received_at AT TIME ZONE 'UTC')::date, count(*) FROM pf_events WHERE seq IS NOT NULL GROUP BY 1", conn);
                await using var r = await cmd.ExecuteReaderAsync(Ct);
                while (await r.ReadAsync(Ct))
                {
                    byDay[r.GetFieldValue<DateOnly>(0)] = r.GetInt64(1);
                }
            }

            expected = [.. o.Days.Select(d => byDay.GetValueOrDefault(d))];
            return expected.SequenceEqual(actual);
        }, TimeSpan.FromSeconds(30), "the ingest read model counted every device event in the log, by day received");
        Assert.True(actual.Sum() > 0, "the seeded fleet's events are in the window");

        // The fleet overview carries them, one per day.
        var api = await GetJsonAsync("/api/fleet/overview?days=90");
        Assert.Equal(90, api["deviceEventsByDay"]!.AsArray().Count);
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
        // The ingest chart: device events and pumps reporting, each named in the legend.
        await Expect(page.Locator("#chart-reporting polyline")).ToHaveCountAsync(2);
        await Expect(page.Locator("#chart-reporting .legend")).ToContainTextAsync("device events stored");
        await Expect(page.Locator("#chart-reporting .legend")).ToContainTextAsync("pumps reporting");
        await Expect(page.Locator("#silent-now")).ToContainTextAsync("not heard from");
        await page.ScreenshotAsync(new() { Path = Path.Combine(BrowserFixture.ScreenshotDirectory, "fleet-overview.png"), FullPage = true });
        Assert.Empty(external);
    }
}
