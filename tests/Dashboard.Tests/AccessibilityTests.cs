using Deque.AxeCore.Commons;
using Deque.AxeCore.Playwright;
using Microsoft.Playwright;
using PumpFleet.EventStore.Audit;
using static Microsoft.Playwright.Assertions;

namespace PumpFleet.Dashboard.Tests;

/// <summary>
/// Every page on a 1366 × 768 laptop screen in the real browser: nothing wider than the window (a table that needs
/// more room scrolls inside its own box, not the page), and no WCAG 2.1 A/AA violation that axe-core finds.
/// </summary>
public sealed class AccessibilityTests(DashboardApp app, BrowserFixture browser)
{
    private const int LaptopWidth = 1366;

    // The WCAG 2.0 and 2.1 levels A and AA, the level most accessibility requirements (EN 301 549, Section 508) name.
    private static readonly AxeRunOptions s_wcagAA = new()
    {
        RunOnly = new RunOnlyOptions { Type = "tag", Values = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"] },
    };

    public static TheoryData<string> Pages => ["/", "/pump?serial=SN0001", "/alerts", "/therapy", "/surveillance", "/worklist?days=30", "/audit", "/login"];

    [Theory]
    [MemberData(nameof(Pages))]
    public async Task Page_FitsALaptopScreen_AndHasNoAxeViolations(string path)
    {
        var context = await browser.RequireBrowser().NewContextAsync(new BrowserNewContextOptions
        {
            BaseURL = app.BaseAddress.ToString(),
            ViewportSize = new() { Width = LaptopWidth, Height = 768 },
        });
        await using var _ = context;
        if (path == "/audit")
        {
            // Audit entries as wide as real ones (a directory snapshot's detail, an operator on a long host name), so
            // the layout is checked against them whatever the other tests wrote before.
            var detail = Enumerable.Range(0, 40).ToDictionary(i => $"user-{i:D2}", i => (string?)$"viewer:{new string((char)('a' + (i % 26)), 16)}");
            await app.App.Services.GetRequiredService<AuditLog>().WriteAsync(new AuditEntry(
                AuditActor.Operator("cli:a.very.long.operator.name@pumpfleet-silo-7f9c6d5b8-xk2pq"), "directory.snapshot",
                "a-target-name-that-goes-on-and-on-without-any-space-to-break-at-0123456789", 0, "2001:db8:ffff:ffff:ffff:ffff:ffff:fffe", detail),
                TestContext.Current.CancellationToken);
        }

        var page = await context.NewPageAsync();
        await page.GotoAsync(path);
        await Expect(page.Locator("body[data-loaded=true]")).ToHaveCountAsync(1, new() { Timeout = 20_000 });
        if (path == "/")
        {
            // The overview charts load beside the table: check the page with them drawn.
            await Expect(page.Locator("body[data-overview=true]")).ToHaveCountAsync(1, new() { Timeout = 20_000 });
        }

        await page.ScreenshotAsync(new() { Path = Path.Combine(BrowserFixture.ScreenshotDirectory, $"laptop-{Name(path)}.png"), FullPage = true });

        var overflow = await page.EvaluateAsync<string[]>("""
            () => {
              const width = document.documentElement.clientWidth;
              if (document.documentElement.scrollWidth <= width) return [];
              // Name the widest elements that stick out, so a failure says what to fix.
              return [...document.querySelectorAll('body *')]
                .filter(e => e.getBoundingClientRect().right > width + 1 && getComputedStyle(e).position !== 'fixed')
                .slice(0, 5)
                .map(e => `${e.tagName.toLowerCase()}${e.id ? '#' + e.id : ''}${e.className ? '.' + String(e.className).split(' ').join('.') : ''} right=${Math.round(e.getBoundingClientRect().right)}`);
            }
            """);
        Assert.True(overflow.Length == 0, $"{path} is wider than {LaptopWidth} px: {string.Join("; ", overflow)}");

        var result = await page.RunAxe(s_wcagAA);
        Assert.True(result.Violations.Length == 0, $"{path}: " + string.Join(" | ", result.Violations.Select(v =>
            $"{v.Id} ({v.Impact}): {v.Help} at {string.Join(", ", v.Nodes.Take(3).Select(n => n.Target?.ToString()))}")));
    }

    private static string Name(string path) => path.Trim('/').Split('?')[0] is { Length: > 0 } n ? n : "fleet";
}
