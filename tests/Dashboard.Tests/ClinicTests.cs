using System.Net;
using System.Net.Http.Json;
using System.Text.Json.Nodes;
using Microsoft.Playwright;
using static Microsoft.Playwright.Assertions;

namespace PumpFleet.Dashboard.Tests;

/// <summary>
/// Clinics (issue 16): a clinic registered through the API, hubs put in it at provisioning or afterwards (audited), and
/// the worklist, the fleet overview, the cohorts and the pump view filtered by or showing it, checked against SQL over
/// the read models of the seeded fleet (real PostgreSQL), plus the worklist page's clinic filter in a browser.
/// </summary>
public sealed class ClinicTests(DashboardApp app, BrowserFixture browser)
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private async Task<JsonNode> GetJsonAsync(string path)
    {
        using var res = await app.Http.GetAsync(path, Ct);
        Assert.True(res.IsSuccessStatusCode, $"{path}: {(int)res.StatusCode} {await res.Content.ReadAsStringAsync(Ct)}");
        return JsonNode.Parse(await res.Content.ReadAsStringAsync(Ct))!;
    }

    private static string NewClinicId() => $"CL-{Guid.NewGuid():N}"[..16];

    /// <summary>A new clinic holding the hubs of two pumps that are on the 90-day worklist (the seeded hubs are HUB-{serial}).</summary>
    private async Task<(string ClinicId, string[] Hubs, string[] Serials)> ClinicWithTwoDuePumpsAsync(bool atProvisioning)
    {
        var clinicId = NewClinicId();
        using (var created = await app.Http.PostAsJsonAsync("/api/clinics", new { id = clinicId, name = "St. Test's pain clinic", timezone = "Europe/Berlin" }, Ct))
        {
            Assert.Equal(HttpStatusCode.Created, created.StatusCode);
        }

        var due = (await GetJsonAsync("/api/worklist?days=90"))["items"]!.AsArray().Select(i => i!["serial"]!.GetValue<string>()).ToList();
        Assert.True(due.Count >= 3, "the seed has pumps due within 90 days");
        string[] serials = [due[0], due[2]];
        var hubs = serials.Select(s => "HUB-" + s).ToArray();
        foreach (var hub in hubs)
        {
            // The seeded pumps were paired without provisioning their hubs: provision them now (once per test run).
            using var provisioned = await app.Http.PostAsJsonAsync("/api/hubs", atProvisioning ? new { hubId = hub, clinicId } : (object)new { hubId = hub }, Ct);
            Assert.True(provisioned.StatusCode is HttpStatusCode.Created or HttpStatusCode.Conflict, $"{hub}: {(int)provisioned.StatusCode}");
            if (!atProvisioning || provisioned.StatusCode == HttpStatusCode.Conflict)
            {
                using var put = await app.Http.PutAsJsonAsync($"/api/hubs/{hub}/clinic", new { clinicId }, Ct);
                Assert.Equal(HttpStatusCode.OK, put.StatusCode);
            }
        }

        return (clinicId, hubs, serials);
    }

    [Fact]
    public async Task Clinic_FiltersTheWorklistOverviewAndCohorts_AndShowsOnThePump()
    {
        var (clinicId, hubs, serials) = await ClinicWithTwoDuePumpsAsync(atProvisioning: true);
        var inList = "'" + string.Join("','", hubs) + "'";

        var listed = (await GetJsonAsync("/api/clinics")).AsArray().Single(c => c!["id"]!.GetValue<string>() == clinicId)!;
        Assert.Equal("St. Test's pain clinic", listed["name"]!.GetValue<string>());
        Assert.Equal("Europe/Berlin", listed["timezone"]!.GetValue<string>());
        Assert.Equal(hubs.Order(StringComparer.Ordinal), listed["hubIds"]!.AsArray().Select(h => h!.GetValue<string>()));

        // The worklist: exactly the clinic's pumps that are due, as SQL over the read model counts them.
        var w = await GetJsonAsync($"/api/worklist?days=90&clinicId={clinicId}");
        Assert.Equal(clinicId, w["clinicId"]!.GetValue<string>());
        Assert.Equal("Europe/Berlin", w["clinicTimezone"]!.GetValue<string>());
        var items = w["items"]!.AsArray().Select(i => i!["serial"]!.GetValue<string>()).ToList();
        Assert.Equal(serials.Order(StringComparer.Ordinal), items.Order(StringComparer.Ordinal));
        Assert.Equal(await app.CountAsync($"SELECT count(*) FROM pf_pump_status WHERE status <> 'inactive' AND hub_id IN ({inList}) AND next_refill_due_at <= now() + interval '90 days'"),
            items.Count);

        // The overview: only the clinic's pumps in every series.
        var o = await GetJsonAsync($"/api/fleet/overview?days=10&clinicId={clinicId}");
        Assert.Equal(clinicId, o["clinicId"]!.GetValue<string>());
        Assert.Null(o["deviceEventsByDay"]);   // counted per log partition, not per pump: the fleet's only
        Assert.Equal(await app.CountAsync($"SELECT count(*) FROM pf_pump_status WHERE status <> 'inactive' AND hub_id IN ({inList})"),
            o["refillDue"]!.AsArray().Sum(b => b!["pumps"]!.GetValue<long>()));
        var days = o["days"]!.AsArray().Select(d => d!.GetValue<string>()).ToList();
        var reporting = o["pumpsReportingByDay"]!.AsArray().Select(v => v!.GetValue<long>()).ToList();
        for (var i = 0; i < days.Count; i++)
        {
            Assert.Equal(await app.CountAsync($"SELECT count(*) FROM pf_daily_flow f JOIN pf_pump_status s USING (serial) WHERE s.hub_id IN ({inList}) AND f.day = '{days[i]}'"),
                reporting[i]);
        }

        var openNow = o["openAnomaliesByKind"]!.AsArray().Sum(k => k!["open"]!.AsArray()[^1]!.GetValue<long>());
        Assert.Equal(await app.CountAsync(
            $"SELECT count(*) FROM pf_anomalies a JOIN pf_pump_status s USING (serial) WHERE s.hub_id IN ({inList}) AND a.resolved_at IS NULL AND a.detected_at < now()"), openNow);

        // Cohorts: the clinic's identified pumps only.
        var cohorts = await GetJsonAsync($"/api/cohorts?by=model&clinicId={clinicId}");
        Assert.Equal(clinicId, cohorts["clinicId"]!.GetValue<string>());
        var members = await app.CountAsync($"SELECT count(*) FROM pf_cohort_members m JOIN pf_pump_status s USING (serial) WHERE s.hub_id IN ({inList}) AND m.model IS NOT NULL");
        Assert.InRange(members, 1, 2);
        Assert.Equal(members, cohorts["fleetPumps"]!.GetValue<long>());
        Assert.Equal(members, cohorts["cohorts"]!.AsArray().Sum(c => c!["pumps"]!.GetValue<long>()));
        var survival = await GetJsonAsync($"/api/cohorts/survival?clinicId={clinicId}");
        Assert.Equal(clinicId, survival["clinicId"]!.GetValue<string>());

        // The pump view names its clinic; a pump of another hub names none.
        var view = await GetJsonAsync($"/api/pumps/{serials[0]}");
        Assert.Equal(clinicId, view["clinicId"]!.GetValue<string>());
        Assert.Equal("St. Test's pain clinic", view["clinicName"]!.GetValue<string>());

        // Moving a hub out of the clinic takes its pump out of the clinic's lists; the change is audited.
        using (var put = await app.Http.PutAsJsonAsync($"/api/hubs/{hubs[1]}/clinic", new { clinicId = (string?)null }, Ct))
        {
            Assert.Equal(HttpStatusCode.OK, put.StatusCode);
        }

        var after = (await GetJsonAsync($"/api/worklist?days=90&clinicId={clinicId}"))["items"]!.AsArray();
        Assert.Equal(serials[0], Assert.Single(after)!["serial"]!.GetValue<string>());
        Assert.Null((await GetJsonAsync($"/api/pumps/{serials[1]}"))["clinicId"]);
        Assert.Equal(1, await app.CountAsync($"SELECT count(*) FROM pf_audit WHERE action = 'hub.clinic' AND target = '{hubs[1]}' AND detail->>'clinicId' IS NULL AND outcome = 200"));
        Assert.Equal(1, await app.CountAsync($"SELECT count(*) FROM pf_audit WHERE action = 'clinic.create' AND target = '{clinicId}' AND outcome = 200"));
    }

    [Theory]
    [InlineData("/api/worklist?clinicId=../x")]
    [InlineData("/api/worklist?clinicId=CL-nobody-has-this")]
    [InlineData("/api/fleet/overview?clinicId=CL-nobody-has-this")]
    [InlineData("/api/cohorts?clinicId=CL-nobody-has-this")]
    [InlineData("/api/cohorts/survival?clinicId=%20")]
    public async Task UnknownOrMalformedClinic_IsAProblemNamingClinicId(string path)
    {
        using var res = await app.Http.GetAsync(path, Ct);
        Assert.Equal(HttpStatusCode.BadRequest, res.StatusCode);
        Assert.NotNull(JsonNode.Parse(await res.Content.ReadAsStringAsync(Ct))!["errors"]!["clinicId"]);
    }

    [Fact]
    public async Task ClinicCommands_ValidateTheirInput_AndKeepWhatExists()
    {
        var id = NewClinicId();
        async Task<(HttpStatusCode Status, JsonNode? Body)> PostAsync(object body)
        {
            using var res = await app.Http.PostAsJsonAsync("/api/clinics", body, Ct);
            var text = await res.Content.ReadAsStringAsync(Ct);
            return (res.StatusCode, text.Length == 0 ? null : JsonNode.Parse(text));
        }

        var (s, b) = await PostAsync(new { id, name = "A", timezone = "Mars/Olympus_Mons" });
        Assert.Equal(HttpStatusCode.BadRequest, s);
        Assert.NotNull(b!["errors"]!["timezone"]);
        (s, b) = await PostAsync(new { id = "bad id", name = "A" });
        Assert.Equal(HttpStatusCode.BadRequest, s);
        Assert.NotNull(b!["errors"]!["id"]);
        (s, b) = await PostAsync(new { id, name = "  " });
        Assert.Equal(HttpStatusCode.BadRequest, s);
        Assert.NotNull(b!["errors"]!["name"]);
        (s, _) = await PostAsync(new { id, name = "First" });
        Assert.Equal(HttpStatusCode.Created, s);
        (s, _) = await PostAsync(new { id, name = "Second" });
        Assert.Equal(HttpStatusCode.Conflict, s);
        Assert.Equal("First", (await GetJsonAsync("/api/clinics")).AsArray().Single(c => c!["id"]!.GetValue<string>() == id)!["name"]!.GetValue<string>());

        // A hub can only join a registered clinic, and only an existing hub can join.
        var hub = $"hub-{Guid.NewGuid():N}"[..20];
        using (var res = await app.Http.PostAsJsonAsync("/api/hubs", new { hubId = hub, clinicId = "CL-nobody-has-this" }, Ct))
        {
            Assert.Equal(HttpStatusCode.BadRequest, res.StatusCode);
            Assert.NotNull(JsonNode.Parse(await res.Content.ReadAsStringAsync(Ct))!["errors"]!["clinicId"]);
        }

        Assert.Equal(0, await app.CountAsync($"SELECT count(*) FROM pf_gateway_hubs WHERE hub_id = '{hub}'"));
        using (var res = await app.Http.PutAsJsonAsync($"/api/hubs/{hub}/clinic", new { clinicId = id }, Ct))
        {
            Assert.Equal(HttpStatusCode.NotFound, res.StatusCode);
        }

        using (var res = await app.Http.PostAsJsonAsync("/api/hubs", new { hubId = hub, clinicId = id }, Ct))
        {
            Assert.Equal(HttpStatusCode.Created, res.StatusCode);
        }

        using (var res = await app.Http.PutAsJsonAsync($"/api/hubs/{hub}/clinic", new { clinicId = "CL-nobody-has-this" }, Ct))
        {
            Assert.Equal(HttpStatusCode.BadRequest, res.StatusCode);
        }

        Assert.Equal(1, await app.CountAsync($"SELECT count(*) FROM pf_gateway_hubs WHERE hub_id = '{hub}' AND clinic_id = '{id}'"));
    }

    [Fact]
    public async Task WorklistPage_ClinicFilter_ShowsOnlyThatClinicsPumps()
    {
        var (clinicId, _, serials) = await ClinicWithTwoDuePumpsAsync(atProvisioning: false);
        var context = await browser.RequireBrowser().NewContextAsync(new BrowserNewContextOptions { BaseURL = app.BaseAddress.ToString(), ViewportSize = new() { Width = 1366, Height = 768 } });
        await using var _ = context;
        var page = await context.NewPageAsync();
        var errors = new List<string>();
        page.PageError += (_, e) => errors.Add(e);
        await page.GotoAsync("/worklist?days=90");
        await Expect(page.Locator("body[data-loaded=true]")).ToHaveCountAsync(1, new() { Timeout = 20_000 });
        var rows = page.Locator("#worklist tbody tr[data-serial]");
        var all = (await GetJsonAsync("/api/worklist?days=90"))["items"]!.AsArray().Count;
        await Expect(rows).ToHaveCountAsync(all);

        await page.SelectOptionAsync("#clinic", clinicId);
        await page.ClickAsync("#worklist-filters button[type=submit]");
        await Expect(rows).ToHaveCountAsync(2);
        Assert.Equal(serials.Order(StringComparer.Ordinal), (await rows.EvaluateAllAsync<string[]>("rows => rows.map(r => r.getAttribute('data-serial'))")).Order(StringComparer.Ordinal));
        await Expect(page.Locator("#summary")).ToContainTextAsync(clinicId);
        Assert.Contains($"clinicId={clinicId}", page.Url, StringComparison.Ordinal);
        await page.ScreenshotAsync(new() { Path = Path.Combine(BrowserFixture.ScreenshotDirectory, "worklist-clinic.png"), FullPage = true });

        // The pump page names the clinic.
        await page.GotoAsync($"/pump?serial={serials[0]}");
        await Expect(page.Locator("body[data-loaded=true]")).ToHaveCountAsync(1, new() { Timeout = 20_000 });
        await Expect(page.Locator("#clinic")).ToContainTextAsync(clinicId);
        Assert.Empty(errors);
    }
}
