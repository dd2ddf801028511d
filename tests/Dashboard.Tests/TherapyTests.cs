using System.Net;
using System.Net.Http.Json;
using System.Text.Json.Nodes;
using Deque.AxeCore.Commons;
using Deque.AxeCore.Playwright;
using Microsoft.Playwright;
using PumpFleet.TestSupport;
using static Microsoft.Playwright.Assertions;

namespace PumpFleet.Dashboard.Tests;

/// <summary>
/// A therapy built through the HTTP API (trial → response → decision → implant → the pump's refill and alarm →
/// replacement → the new pump's alarm → explant) on two seeded pumps, its timeline over the API and on the therapy
/// page in Chromium (in order, fits 1366 px, no axe violation), the pump page's link to it, and the refusals.
/// </summary>
public sealed class TherapyTests(DashboardApp app, BrowserFixture browser)
{
    // Seeded pumps: SN0009 refills at Start+2 min and raises LOW_RESERVOIR at Start+30 h; SN0010 refills at Start+2 min
    // (before its implant here, so not in the timeline) and raises MOTOR_STALL at Start+60 h.
    private const string First = "SN0009";
    private const string Second = "SN0010";

    private static string NewId() => $"TH-{Guid.NewGuid():N}"[..16] + "-7";

    private async Task<HttpResponseMessage> PostAsync(string id, string action, object body) =>
        await app.Http.PostAsJsonAsync($"/api/therapies/{id}/{action}", body, TestContext.Current.CancellationToken);

    private async Task OkAsync(string id, string action, object body)
    {
        using var r = await PostAsync(id, action, body);
        Assert.True(r.IsSuccessStatusCode, $"{action}: {(int)r.StatusCode} {await r.Content.ReadAsStringAsync(TestContext.Current.CancellationToken)}");
    }

    [Fact]
    public async Task A_therapy_from_trial_to_explant_shows_in_order_across_a_replacement_on_its_page()
    {
        var ct = TestContext.Current.CancellationToken;
        var start = app.Seed.Start;
        var id = NewId();
        await OkAsync(id, "open", new { at = start.AddDays(-30), indication = "spasticity" });
        await OkAsync(id, "trial", new { at = start.AddDays(-25), kind = "continuous", externalPump = "EXT-12", drug = "baclofen", endedAt = start.AddDays(-23) });
        await OkAsync(id, "response", new { at = start.AddDays(-23), painBefore = 8, painAfter = 3 });
        await OkAsync(id, "decision", new { at = start.AddDays(-22), proceed = true });
        await OkAsync(id, "implant", new { at = start.AddDays(-1), serial = First });
        await OkAsync(id, "replace", new { at = start.AddHours(35), serial = Second, note = "elective replacement" });
        await OkAsync(id, "explant", new { at = start.AddHours(66), reason = "malfunction" });

        string[] expected =
        [
            "therapy.opened", "therapy.trial", "therapy.response", "therapy.decision", $"therapy.implant {First}", $"refill {First}",
            $"alarm {First}", $"therapy.explant {First}", $"therapy.implant {Second}", $"alarm {Second}", $"therapy.explant {Second}",
        ];
        JsonNode? therapy = null;
        await Eventually.TrueAsync(async () =>
        {
            therapy = await app.Http.GetFromJsonAsync<JsonNode>($"/api/therapies/{id}", ct);
            return therapy!["timeline"]!.AsArray().Count == expected.Length;
        }, TimeSpan.FromSeconds(30), "the timeline has the pumps' refill and alarms");
        Assert.Equal(expected, therapy!["timeline"]!.AsArray().Select(e => e!["serial"] is { } s ? $"{e["kind"]} {s}" : (string)e["kind"]!));
        Assert.Equal("explanted", (string)therapy["phase"]!);
        Assert.Equal("replacement", (string)therapy["pumps"]![0]!["explantReason"]!);
        Assert.Equal("malfunction", (string)therapy["pumps"]![1]!["explantReason"]!);

        // The pump view names its therapy (from the therapies read model).
        await Eventually.TrueAsync(async () => (string?)(await app.Http.GetFromJsonAsync<JsonNode>($"/api/pumps/{Second}", ct))!["therapyId"] == id,
            TimeSpan.FromSeconds(30), "the pump view names its therapy");
        // As of a past time, the pump view shows the therapy as it stood then (the therapy stream folded up to that
        // time), not today's phase; before its implant in the therapy a pump has none.
        var firstThen = (await app.Http.GetFromJsonAsync<JsonNode>($"/api/pumps/{First}?asOf={Uri.EscapeDataString(start.AddHours(10).ToString("O"))}", ct))!;
        Assert.Equal(id, (string?)firstThen["therapyId"]);
        Assert.Equal("implanted", (string?)firstThen["therapyPhase"]);
        Assert.Null(firstThen["explantedAt"]);
        var secondThen = (await app.Http.GetFromJsonAsync<JsonNode>($"/api/pumps/{Second}?asOf={Uri.EscapeDataString(start.AddHours(50).ToString("O"))}", ct))!;
        Assert.Equal("implanted", (string?)secondThen["therapyPhase"]);
        Assert.Equal(start.AddHours(35), secondThen["implantedAt"]!.GetValue<DateTimeOffset>());
        Assert.Null((await app.Http.GetFromJsonAsync<JsonNode>($"/api/pumps/{Second}?asOf={Uri.EscapeDataString(start.AddHours(20).ToString("O"))}", ct))!["therapyId"]);
        await Eventually.TrueAsync(async () => (string?)(await app.Http.GetFromJsonAsync<JsonNode>($"/api/pumps/{Second}", ct))!["therapyPhase"] == "explanted",
            TimeSpan.FromSeconds(30), "the current view shows today's phase");

        // The list reads the same read model, which may still be applying the explant.
        await Eventually.TrueAsync(async () => (string?)(await app.Http.GetFromJsonAsync<JsonNode>($"/api/pumps?q={Second}", ct))!["items"]![0]!["therapyPhase"] == "explanted",
            TimeSpan.FromSeconds(30), "the pump list shows the therapy explanted");

        var context = await browser.RequireBrowser().NewContextAsync(new BrowserNewContextOptions
        {
            BaseURL = app.BaseAddress.ToString(), ViewportSize = new() { Width = 1366, Height = 768 },
        });
        await using var _ = context;
        var page = await context.NewPageAsync();
        var errors = new List<string>();
        page.PageError += (_, e) => errors.Add(e);
        await page.GotoAsync($"/pump?serial={Second}");
        await Expect(page.Locator("body[data-loaded=true]")).ToHaveCountAsync(1, new() { Timeout = 20_000 });
        // The link's target is checked, then followed: the pump page re-renders whenever the live feed pushes a change
        // of this pump (other tests write to the seeded pumps), and a click can land on the table it just replaced.
        var link = page.Locator("#therapy-link");
        await Expect(link).ToHaveAttributeAsync("href", $"/therapy?id={id}");
        await page.GotoAsync((await link.GetAttributeAsync("href"))!);
        await Expect(page).ToHaveURLAsync(new System.Text.RegularExpressions.Regex($"/therapy\\?id={id}$"));
        await Expect(page.Locator("body[data-loaded=true]")).ToHaveCountAsync(1, new() { Timeout = 20_000 });
        var rows = page.Locator("#timeline tbody tr");
        await Expect(rows).ToHaveCountAsync(expected.Length);
        Assert.Equal(expected.Select(e => e.Split(' ')[0]), await rows.EvaluateAllAsync<string[]>("rs => rs.map(r => r.dataset.kind)"));
        await Expect(rows.Nth(2)).ToContainTextAsync("pain 8 → 3");
        await Expect(rows.Nth(7)).ToContainTextAsync($"Pump {First} explanted (replacement)");
        await Expect(rows.Nth(9)).ToContainTextAsync("MOTOR_STALL");
        await Expect(page.Locator("#summary")).ToContainTextAsync("explanted");
        await page.ScreenshotAsync(new() { Path = Path.Combine(BrowserFixture.ScreenshotDirectory, "therapy-timeline.png"), FullPage = true });
        Assert.Empty(errors);

        var wider = await page.EvaluateAsync<bool>("() => document.documentElement.scrollWidth > document.documentElement.clientWidth");
        Assert.False(wider, "the therapy page is wider than 1366 px");
        var axe = await page.RunAxe(new AxeRunOptions { RunOnly = new RunOnlyOptions { Type = "tag", Values = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"] } });
        Assert.True(axe.Violations.Length == 0, string.Join(" | ", axe.Violations.Select(v => $"{v.Id}: {v.Help}")));
    }

    [Fact]
    public async Task Bad_commands_get_a_clear_4xx_with_the_reason_and_change_nothing()
    {
        var ct = TestContext.Current.CancellationToken;
        using (var name = await PostAsync("John.Smith", "open", new { }))
        {
            Assert.Equal(HttpStatusCode.BadRequest, name.StatusCode);
            var problem = await name.Content.ReadFromJsonAsync<JsonNode>(ct);
            Assert.Contains("never a name", (string)problem!["errors"]!["id"]![0]!, StringComparison.Ordinal);
        }

        var id = NewId();
        using (var unknown = await PostAsync(id, "trial", new { kind = "single-dose" }))
        {
            Assert.Equal(HttpStatusCode.NotFound, unknown.StatusCode);
        }

        await OkAsync(id, "open", new { });
        using (var again = await PostAsync(id, "open", new { }))
        {
            Assert.Equal(HttpStatusCode.Conflict, again.StatusCode);
        }

        using (var early = await PostAsync(id, "implant", new { serial = "SN0011" }))
        {
            Assert.Equal(HttpStatusCode.Conflict, early.StatusCode);
            Assert.Contains("decision", (string)(await early.Content.ReadFromJsonAsync<JsonNode>(ct))!["detail"]!, StringComparison.Ordinal);
        }

        using (var pain = await PostAsync(id, "trial", new { kind = "multi-dose", doses = 1 }))
        {
            Assert.Equal(HttpStatusCode.BadRequest, pain.StatusCode);
            Assert.NotNull((await pain.Content.ReadFromJsonAsync<JsonNode>(ct))!["errors"]!["doses"]);
        }

        var therapy = await app.Http.GetFromJsonAsync<JsonNode>($"/api/therapies/{id}", ct);
        Assert.Equal("opened", (string)therapy!["phase"]!);
        Assert.Single(therapy["timeline"]!.AsArray());
    }
}
