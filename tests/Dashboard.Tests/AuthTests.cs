using System.Net;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using PumpFleet.Dashboard.Auth;
using Orleans.Dashboard;
using PumpFleet.Clustering;
using PumpFleet.Dashboard.Hosting;

namespace PumpFleet.Dashboard.Tests;

/// <summary>
/// The stand-alone Dashboard composition (an Orleans client of the test cluster, AddPumpFleetOrleansClient) in
/// Cookie mode: users with hashed passwords, API keys with roles.
/// </summary>
public sealed class AuthTests(DashboardApp app) : IAsyncLifetime
{
    private const string ViewerKey = "viewer-key-0123456789abcdef";
    private const string AnalystKey = "analyst-key-0123456789abcdef";
    private WebApplication _host = null!;
    private Uri _base = null!;

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    public async ValueTask InitializeAsync()
    {
        var builder = WebApplication.CreateBuilder(new WebApplicationOptions { EnvironmentName = "Production", ApplicationName = typeof(AuthTests).Assembly.GetName().Name });
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        builder.Configuration.AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["ConnectionStrings:PumpFleet"] = app.ConnectionString,
            ["PumpFleet:GatewayPort"] = app.GatewayPort.ToString(System.Globalization.CultureInfo.InvariantCulture),
            ["Orleans:ClusterId"] = "pumpfleet-test",
            ["Orleans:ServiceId"] = "pumpfleet",
            ["Dashboard:Auth:Users:ana:PasswordHash"] = PasswordHasher.Hash("s3cret!"),
            ["Dashboard:Auth:Users:ana:Role"] = "analyst",
            ["Dashboard:Auth:ApiKeys:reporting"] = ViewerKey,
            ["Dashboard:Auth:ApiKeys:triage-bot"] = AnalystKey,
            ["Dashboard:Auth:ApiKeyRoles:triage-bot"] = "analyst",
            ["Dashboard:Auth:AllowHttpCookies"] = "true",
            ["Logging:LogLevel:Default"] = "Warning",
        });
        builder.AddPumpFleetOrleansClient(client => client.AddDashboard());
        builder.AddPumpFleetDashboard();
        _host = builder.Build();
        _host.MapPumpFleetDashboard();
        await _host.StartAsync(Ct);
        _base = new Uri(_host.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First());
    }

    public async ValueTask DisposeAsync()
    {
        await _host.StopAsync();
        await _host.DisposeAsync();
    }

    private HttpClient Client(string? apiKey = null, bool bearer = false, CookieContainer? cookies = null)
    {
        var handler = new HttpClientHandler { AllowAutoRedirect = false, CookieContainer = cookies ?? new CookieContainer() };
        var client = new HttpClient(handler) { BaseAddress = _base };
        if (apiKey is not null)
        {
            if (bearer)
            {
                client.DefaultRequestHeaders.Authorization = new("Bearer", apiKey);
            }
            else
            {
                client.DefaultRequestHeaders.Add("X-Api-Key", apiKey);
            }
        }

        return client;
    }

    [Fact]
    public async Task Api_WithoutCredentials_Is401_AndPagesRedirectToSignIn()
    {
        using var anonymous = Client();
        Assert.Equal(HttpStatusCode.Unauthorized, (await anonymous.GetAsync("/api/pumps", Ct)).StatusCode);
        Assert.Equal(HttpStatusCode.Unauthorized, (await anonymous.GetAsync("/api/pumps", Ct)).StatusCode);
        var page = await anonymous.GetAsync("/", Ct);
        Assert.Equal(HttpStatusCode.Redirect, page.StatusCode);
        Assert.StartsWith("/login", page.Headers.Location!.PathAndQuery, StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.OK, (await anonymous.GetAsync("/login", Ct)).StatusCode);
        using var wrong = Client("not-a-key-at-all-000000");
        Assert.Equal(HttpStatusCode.Unauthorized, (await wrong.GetAsync("/api/pumps", Ct)).StatusCode);
    }

    [Fact]
    public async Task ApiKeys_CarryTheirRoles()
    {
        using var viewer = Client(ViewerKey);
        var pumps = await viewer.GetAsync("/api/pumps/SN0001", Ct);
        Assert.Equal(HttpStatusCode.OK, pumps.StatusCode);
        Assert.Equal(HttpStatusCode.Forbidden, (await viewer.PostAsync("/api/anomalies/NO-SUCH/acknowledge", JsonContent(), Ct)).StatusCode);

        using var analyst = Client(AnalystKey, bearer: true);
        Assert.Equal(HttpStatusCode.NotFound, (await analyst.PostAsync("/api/anomalies/NO-SUCH/acknowledge", JsonContent(), Ct)).StatusCode);
        Assert.Equal(HttpStatusCode.Forbidden, (await analyst.PostAsync("/api/admin/projections/pumps/rebuild", null, Ct)).StatusCode);
    }

    [Fact]
    public async Task ComplaintFile_NeedsAnAnalyst()
    {
        using var viewer = Client(ViewerKey);
        Assert.Equal(HttpStatusCode.Forbidden, (await viewer.GetAsync("/api/pumps/SN0001/complaint-file", Ct)).StatusCode);
        using var analyst = Client(AnalystKey);
        using var res = await analyst.GetAsync("/api/pumps/SN0001/complaint-file?format=csv", Ct);
        Assert.Equal(HttpStatusCode.OK, res.StatusCode);
        Assert.StartsWith("section,at,", await res.Content.ReadAsStringAsync(Ct), StringComparison.Ordinal);
    }

    [Fact]
    public async Task CookieSignIn_WithTheConfiguredPassword()
    {
        var cookies = new CookieContainer();
        using var browser = Client(cookies: cookies);
        var token = DashboardApp.TokenFrom(await browser.GetAsync("/login", Ct));
        var bad = await browser.PostAsync("/auth/login", new FormUrlEncodedContent(new Dictionary<string, string> { ["username"] = "ana", ["password"] = "guess", ["returnUrl"] = "/alerts", ["__RequestVerificationToken"] = token }), Ct);
        Assert.Contains("failed=1", bad.Headers.Location!.ToString(), StringComparison.Ordinal);

        var good = await browser.PostAsync("/auth/login", new FormUrlEncodedContent(new Dictionary<string, string> { ["username"] = "ana", ["password"] = "s3cret!", ["returnUrl"] = "https://evil.example/", ["__RequestVerificationToken"] = token }), Ct);
        Assert.Equal("/", good.Headers.Location!.ToString());
        Assert.Equal(HttpStatusCode.OK, (await browser.GetAsync("/", Ct)).StatusCode);
        var me = await browser.GetStringAsync("/api/me", Ct);
        Assert.Contains("\"ana\"", me, StringComparison.Ordinal);
        Assert.Contains("analyst", me, StringComparison.Ordinal);
        Assert.DoesNotContain("admin", me, StringComparison.Ordinal);
    }

    [Fact]
    public void PasswordHasher_VerifiesOnlyTheRightPassword()
    {
        var hash = PasswordHasher.Hash("correct horse");
        Assert.True(PasswordHasher.Verify("correct horse", hash));
        Assert.False(PasswordHasher.Verify("correct horse!", hash));
        Assert.NotEqual(hash, PasswordHasher.Hash("correct horse"));
        Assert.False(PasswordHasher.IsWellFormed("plain"));
    }

    private static StringContent JsonContent() => new("{\"note\":\"x\"}", System.Text.Encoding.UTF8, "application/json");
}
