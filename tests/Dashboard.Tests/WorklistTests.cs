using System.Net;
using System.Text.Json.Nodes;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using Microsoft.Playwright;
using Npgsql;
using PumpFleet.Contracts.Events;
using PumpFleet.Contracts.Grains;
using PumpFleet.Domain.Detection;
using PumpFleet.ReadModels;
using PumpFleet.TestSupport;
using static Microsoft.Playwright.Assertions;

namespace PumpFleet.Dashboard.Tests;

/// <summary>
/// The refill worklist (<c>GET /api/worklist</c>, <c>/worklist</c>) over the seeded fleet, and the cohort flow
/// correction end to end: a <c>cohort-flow-deviation</c> opened through the cohort's grain reaches the anomaly read
/// model, the cohort flow job tells the lot's pumps, and the pump view and the stored refill-due dates the worklist
/// serves come forward by its factor, with their source; resolved, they go back.
/// </summary>
public sealed class WorklistTests(DashboardApp app, BrowserFixture browser)
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private async Task<JsonNode> GetJsonAsync(string path)
    {
        using var res = await app.Http.GetAsync(path, Ct);
        Assert.True(res.IsSuccessStatusCode, $"{path}: {(int)res.StatusCode} {await res.Content.ReadAsStringAsync(Ct)}");
        return JsonNode.Parse(await res.Content.ReadAsStringAsync(Ct))!;
    }

    [Fact]
    public async Task Worklist_HoldsThePumpsDueByTheLedger_EarliestFirst_WithWhatToPrepare()
    {
        foreach (var days in new[] { 14, 30 })
        {
            var w = await GetJsonAsync($"/api/worklist?days={days}");
            var items = w["items"]!.AsArray();
            var expected = await app.CountAsync(
                $"SELECT count(*) FROM pf_pump_status WHERE status <> 'inactive' AND next_refill_due_at <= now() + interval '{days} days'");
            Assert.Equal(expected, items.Count);
            Assert.InRange(items.Count, 1, DashboardApp.Pumps);
            var due = items.Select(i => i!["dueAt"]!.GetValue<DateTimeOffset>()).ToList();
            Assert.Equal(due.Order(), due);
            foreach (var i in items)
            {
                Assert.Equal("ledger", i!["dueSource"]!.GetValue<string>());
                var capacity = i["reservoirCapacityMl"]!.GetValue<double>();
                Assert.Equal(capacity, i["fillVolumeMl"]!.GetValue<double>());
                Assert.Equal(capacity * 2000, i["drugAmount"]!.GetValue<double>(), 6);   // the seed fills 2000 mcg/mL
                Assert.Equal("mcg", i["amountUnit"]!.GetValue<string>());
                Assert.NotNull(i["drug"]);
            }
        }

        // One hub: only its pumps.
        var serial = (await GetJsonAsync("/api/worklist?days=30"))["items"]!.AsArray()[0]!["serial"]!.GetValue<string>();
        var hub = "HUB-" + serial;
        var mine = (await GetJsonAsync($"/api/worklist?days=30&hubId={hub}"))["items"]!.AsArray();
        Assert.Equal(serial, Assert.Single(mine)!["serial"]!.GetValue<string>());
    }

    [Theory]
    [InlineData("/api/worklist?days=0", "days")]
    [InlineData("/api/worklist?days=91", "days")]
    [InlineData("/api/worklist?days=soon", "days")]
    [InlineData("/api/worklist?hubId=../etc", "hubId")]
    [InlineData("/api/worklist?limit=0", "limit")]
    public async Task BadParameters_AreProblemsNamingTheParameter(string path, string parameter)
    {
        using var res = await app.Http.GetAsync(path, Ct);
        Assert.Equal(HttpStatusCode.BadRequest, res.StatusCode);
        var problem = JsonNode.Parse(await res.Content.ReadAsStringAsync(Ct))!;
        Assert.NotNull(problem["errors"]![parameter]);
    }

    [Fact]
    public async Task CohortFlowWarning_BringsTheCohortsDatesForward_InTheWorklistAndThePumpView_ThenGoesAway()
    {
        const string stream = "cohort-flow:lot:L2291";
        const double factor = 1.5;
        var grains = app.App.Services.GetRequiredService<IGrainFactory>();
        await using var dataSource = NpgsqlDataSource.Create(app.ConnectionString);
        var job = new CohortFlowJob(dataSource, grains, Options.Create(new AnomalyDetectionOptions()), TimeProvider.System,
            new Microsoft.Extensions.Configuration.ConfigurationBuilder().Build(), NullLogger<CohortFlowJob>.Instance);

        // The lot's pumps: SN0000–SN0005 and SN0012–SN0017 (FleetSeed: lot by i / 6 % 2). Their dates before the warning.
        var (low, from, ledgerDue, estimate, delivered, rate, lowMl) = await DatesAsync("SN0000");
        var grain = grains.GetGrain<ICohortSignalGrain>(stream);
        var opened = await grain.SetFindingAsync(AnomalyKinds.CohortFlowDeviation, new CohortSignalFinding
        {
            Summary = "lot L2291: test warning",
            Evidence = new Dictionary<string, double> { ["factor"] = factor, ["pumps"] = 12, ["direction"] = 1 },
        });
        Assert.NotNull(opened);
        try
        {
            // The job tells the lot's pumps once the warning is in the anomaly read model (its source in a real run is the
            // job's own open, in the same run).
            await Eventually.TrueAsync(async () => await job.TellPumpsAsync(Ct) > 0 || (await GetJsonAsync("/api/pumps/SN0000"))["flowCorrection"] is not null,
                TimeSpan.FromSeconds(30), "the job told the lot's pumps");

            // The level is corrected (motor volume since the refill × (factor − 1) already gone), then it falls at rate × factor.
            var expected = from.AddDays((estimate - (delivered * (factor - 1)) - lowMl) / (rate * factor));
            Assert.True(expected < from + ((low - from) / factor), "correcting the level brings the date further forward than the rate alone");
            JsonNode? item = null;
            await Eventually.TrueAsync(async () =>
            {
                item = (await GetJsonAsync("/api/worklist?days=60"))["items"]!.AsArray().FirstOrDefault(i => i!["serial"]!.GetValue<string>() == "SN0000");
                return item?["dueSource"]?.GetValue<string>() == "corrected";
            }, TimeSpan.FromSeconds(30), "the worklist used the cohort's factor");
            Assert.Equal(expected, item!["dueAt"]!.GetValue<DateTimeOffset>(), TimeSpan.FromSeconds(1));
            Assert.Equal(ledgerDue, item["uncorrectedDueAt"]!.GetValue<DateTimeOffset>());
            Assert.Equal(factor, item["flowFactor"]!.GetValue<double>());
            Assert.Equal("lot L2291", item["flowCohort"]!.GetValue<string>());

            // A pump of the other lot keeps its ledger date.
            var other = (await GetJsonAsync("/api/worklist?days=60"))["items"]!.AsArray().First(i => i!["serial"]!.GetValue<string>() == "SN0006")!;
            Assert.Equal("ledger", other["dueSource"]!.GetValue<string>());

            var view = await GetJsonAsync("/api/pumps/SN0000");
            var correction = view["flowCorrection"]!;
            Assert.Equal(factor, correction["factor"]!.GetValue<double>());
            Assert.Equal(((AnomalyDetected)opened).AnomalyId, correction["anomalyId"]!.GetValue<string>());
            Assert.Equal(expected, correction["lowReservoirAt"]!.GetValue<DateTimeOffset>(), TimeSpan.FromSeconds(1));
            Assert.Null((await GetJsonAsync("/api/pumps/SN0006"))["flowCorrection"]);

            // The pages show it as corrected, with its source.
            var context = await browser.RequireBrowser().NewContextAsync(new BrowserNewContextOptions { BaseURL = app.BaseAddress.ToString(), ViewportSize = new() { Width = 1366, Height = 768 } });
            await using var _ = context;
            var page = await context.NewPageAsync();
            await page.GotoAsync("/worklist?days=60");
            await Expect(page.Locator("body[data-loaded=true]")).ToHaveCountAsync(1, new() { Timeout = 20_000 });
            await Expect(page.Locator("#worklist tr[data-serial='SN0000'] .corrected")).ToHaveCountAsync(1);
            await Expect(page.Locator("#worklist tr[data-serial='SN0006'] .corrected")).ToHaveCountAsync(0);
            await page.ScreenshotAsync(new() { Path = Path.Combine(BrowserFixture.ScreenshotDirectory, "worklist-corrected.png"), FullPage = true });
            await page.GotoAsync("/pump?serial=SN0000");
            await Expect(page.Locator("body[data-loaded=true]")).ToHaveCountAsync(1, new() { Timeout = 20_000 });
            await Expect(page.Locator("#state")).ToContainTextAsync("Next refill due (corrected)");
            await Expect(page.Locator("#state")).ToContainTextAsync(((AnomalyDetected)opened).AnomalyId);
            await page.ScreenshotAsync(new() { Path = Path.Combine(BrowserFixture.ScreenshotDirectory, "pump-flow-corrected.png"), FullPage = true });
        }
        finally
        {
            await grain.SetFindingAsync(AnomalyKinds.CohortFlowDeviation, null);

            // Resolved: once the read model shows it, the job tells the pumps to drop the factor.
            await Eventually.TrueAsync(async () =>
            {
                await job.TellPumpsAsync(Ct);
                return (await GetJsonAsync("/api/pumps/SN0000"))["flowCorrection"] is null;
            }, TimeSpan.FromSeconds(30), "the correction went away with the warning");
        }

        await Eventually.TrueAsync(async () =>
            (await GetJsonAsync("/api/worklist?days=60"))["items"]!.AsArray().All(i => i!["dueSource"]!.GetValue<string>() != "corrected"),
            TimeSpan.FromSeconds(30), "the worklist is back on the ledger's dates");
    }

    [Fact]
    public async Task WorklistPage_ListsThePumpsDue_SortedByDueDate()
    {
        var context = await browser.RequireBrowser().NewContextAsync(new BrowserNewContextOptions { BaseURL = app.BaseAddress.ToString(), ViewportSize = new() { Width = 1366, Height = 768 } });
        await using var _ = context;
        var page = await context.NewPageAsync();
        var errors = new List<string>();
        page.PageError += (_, e) => errors.Add(e);
        await page.GotoAsync("/worklist?days=30");
        await Expect(page.Locator("body[data-loaded=true]")).ToHaveCountAsync(1, new() { Timeout = 20_000 });
        var api = (await GetJsonAsync("/api/worklist?days=30"))["items"]!.AsArray().Select(i => i!["serial"]!.GetValue<string>()).ToList();
        var rows = page.Locator("#worklist tbody tr[data-serial]");
        await Expect(rows).ToHaveCountAsync(api.Count);
        Assert.Equal(api, await rows.EvaluateAllAsync<string[]>("rows => rows.map(r => r.getAttribute('data-serial'))"));
        await Expect(page.Locator("#summary")).ToContainTextAsync($"{api.Count} pump(s) due");

        // The filter narrows to the look-ahead asked for.
        await page.FillAsync("#days", "14");
        await page.ClickAsync("#worklist-filters button[type=submit]");
        var within14 = (int)await app.CountAsync("SELECT count(*) FROM pf_pump_status WHERE status <> 'inactive' AND next_refill_due_at <= now() + interval '14 days'");
        await Expect(rows).ToHaveCountAsync(within14);
        await page.ScreenshotAsync(new() { Path = Path.Combine(BrowserFixture.ScreenshotDirectory, "worklist.png"), FullPage = true });
        Assert.Empty(errors);
    }

    private async Task<(DateTimeOffset Low, DateTimeOffset From, DateTimeOffset Due, double Estimate, double Delivered, double Rate, double LowMl)> DatesAsync(string serial)
    {
        await using var conn = new NpgsqlConnection(app.ConnectionString);
        await conn.OpenAsync(Ct);
        await using var cmd = new NpgsqlCommand("""
            SELECT low_reservoir_at, forecast_from, next_refill_due_at, reservoir_ml, delivered_since_refill_ml, forecast_rate_ml_per_day, low_reservoir_ml
              FROM pf_pump_status WHERE serial = $1
            """, conn);
        cmd.Parameters.Add(new NpgsqlParameter { Value = serial });
        await using var r = await cmd.ExecuteReaderAsync(Ct);
        Assert.True(await r.ReadAsync(Ct));
        return (r.GetFieldValue<DateTimeOffset>(0), r.GetFieldValue<DateTimeOffset>(1), r.GetFieldValue<DateTimeOffset>(2), r.GetDouble(3), r.GetDouble(4),
            r.GetDouble(5), r.GetDouble(6));
    }
}
