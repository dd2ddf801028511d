using Microsoft.Playwright;

namespace PumpFleet.Dashboard.Tests;

/// <summary>
/// Headless Chromium from the system (Debian's /usr/bin/chromium, or CHROMIUM_PATH), driven by Playwright; no browser
/// download. A missing browser fails the browser tests with the install command rather than skipping them.
/// </summary>
public sealed class BrowserFixture : IAsyncLifetime
{
    public IPlaywright? Playwright { get; private set; }
    public IBrowser? Browser { get; private set; }
    public string? Error { get; private set; }

    public static string ExecutablePath => Environment.GetEnvironmentVariable("CHROMIUM_PATH") ?? "/usr/bin/chromium";

    public static string ScreenshotDirectory { get; } = Path.Combine(AppContext.BaseDirectory, "TestResults", "screenshots");

    public async ValueTask InitializeAsync()
    {
        if (!File.Exists(ExecutablePath))
        {
            Error = $"Chromium is not installed at {ExecutablePath}. Install it with 'apt-get install -y chromium' (scripts/install-test-deps.sh does) or set CHROMIUM_PATH.";
            return;
        }

        Playwright = await Microsoft.Playwright.Playwright.CreateAsync();
        Browser = await Playwright.Chromium.LaunchAsync(new BrowserTypeLaunchOptions
        {
            ExecutablePath = ExecutablePath,
            Headless = true,
            Args = ["--disable-gpu", "--disable-dev-shm-usage", "--disable-quic", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--no-first-run"],
        });
        Directory.CreateDirectory(ScreenshotDirectory);
    }

    public IBrowser RequireBrowser() => Browser ?? throw new InvalidOperationException(Error ?? "The browser did not start.");

    public async ValueTask DisposeAsync()
    {
        if (Browser is not null)
        {
            await Browser.DisposeAsync();
        }

        Playwright?.Dispose();
    }
}
