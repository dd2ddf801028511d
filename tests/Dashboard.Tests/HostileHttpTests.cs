using System.Net;
using System.Net.Http.Json;
using System.Text.RegularExpressions;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.Options;
using PumpFleet.Dashboard.Auth;
using Orleans.Dashboard;
using PumpFleet.Clustering;
using PumpFleet.Dashboard.Hosting;
using PumpFleet.EventStore.Audit;
using DashboardOptions = PumpFleet.Dashboard.Hosting.DashboardOptions;
using PumpFleet.ServiceDefaults;

namespace PumpFleet.Dashboard.Tests;

/// <summary>
/// The hostile HTTP suite (docs/security.md): the dashboard composition as the Dashboard process and the all-in-one
/// silo map it (MapDefaultEndpoints + MapPumpFleetDashboard), in the Production environment with cookie sign-in, and the
/// gateway host's composition. Every mapped endpoint is called anonymously; every state change is tried without the
/// antiforgery token; roles are escalated; the sign-in is flooded; keys and users are revoked while in use.
/// </summary>
public sealed partial class HostileHttpTests(DashboardApp app) : IAsyncLifetime
{
    private const string ViewerKey = "hostile-viewer-key-0123456789";
    private const string AnalystKey = "hostile-analyst-key-0123456789";
    private const string AdminKey = "hostile-admin-key-0123456789ab";
    private const string Password = "c0rrect-h0rse";
    private const int SignInsPerMinute = 40;

    // Anonymous access is allowed here and nowhere else. The OpenAPI document describes the API (no data).
    private static readonly HashSet<string> AllowList = new(StringComparer.Ordinal)
    {
        "GET /health/live", "GET /health/ready", "GET /metrics", "GET /login", "POST /auth/login", "GET /openapi/{documentName}.json",
    };

    private WebApplication _host = null!;
    private Uri _base = null!;

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    public async ValueTask InitializeAsync() => (_host, _base) = await StartDashboardAsync();

    // One dashboard replica on the shared database (a test may start a second one).
    private async Task<(WebApplication Host, Uri Base)> StartDashboardAsync()
    {
        var builder = WebApplication.CreateBuilder(new WebApplicationOptions { EnvironmentName = "Production", ApplicationName = typeof(HostileHttpTests).Assembly.GetName().Name });
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        var hash = PasswordHasher.Hash(Password);
        builder.Configuration.AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["ConnectionStrings:PumpFleet"] = app.ConnectionString,
            ["PumpFleet:GatewayPort"] = app.GatewayPort.ToString(System.Globalization.CultureInfo.InvariantCulture),
            ["Orleans:ClusterId"] = "pumpfleet-test",
            ["Orleans:ServiceId"] = "pumpfleet",
            ["Dashboard:Auth:Users:vera:PasswordHash"] = hash,
            ["Dashboard:Auth:Users:vera:Role"] = "viewer",
            ["Dashboard:Auth:Users:adam:PasswordHash"] = hash,
            ["Dashboard:Auth:Users:adam:Role"] = "admin",
            ["Dashboard:Auth:Users:dora:PasswordHash"] = hash,
            ["Dashboard:Auth:Users:dora:Role"] = "admin",
            ["Dashboard:Auth:Users:lola:PasswordHash"] = hash,
            ["Dashboard:Auth:Users:lola:Role"] = "viewer",
            ["Dashboard:Auth:Users:rhea:PasswordHash"] = hash,
            ["Dashboard:Auth:Users:rhea:Role"] = "viewer",
            ["Dashboard:Auth:ApiKeys:reporting"] = ViewerKey,
            ["Dashboard:Auth:ApiKeys:triage-bot"] = AnalystKey,
            ["Dashboard:Auth:ApiKeyRoles:triage-bot"] = "analyst",
            ["Dashboard:Auth:ApiKeys:provisioner"] = AdminKey,
            ["Dashboard:Auth:ApiKeyRoles:provisioner"] = "admin",
            ["Dashboard:Auth:AllowHttpCookies"] = "true",
            ["Dashboard:Auth:SignInAttemptsPerMinute"] = SignInsPerMinute.ToString(System.Globalization.CultureInfo.InvariantCulture),
            ["Logging:LogLevel:Default"] = "Warning",
        });
        builder.AddServiceDefaults();
        builder.AddPumpFleetOrleansClient(client => client.AddDashboard());
        builder.AddPumpFleetDashboard();
        var host = builder.Build();
        host.MapDefaultEndpoints();
        host.MapPumpFleetDashboard();
        await host.StartAsync(Ct);
        return (host, new Uri(host.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First()));
    }

    public async ValueTask DisposeAsync()
    {
        await _host.StopAsync();
        await _host.DisposeAsync();
    }

    private HttpClient Client(string? apiKey = null, CookieContainer? cookies = null, Uri? baseAddress = null)
    {
        var client = new HttpClient(new HttpClientHandler { AllowAutoRedirect = false, CookieContainer = cookies ?? new CookieContainer() }) { BaseAddress = baseAddress ?? _base };
        if (apiKey is not null)
        {
            client.DefaultRequestHeaders.Add("X-Api-Key", apiKey);
        }

        return client;
    }

    /// <summary>Signs in through the form (with the token of the sign-in page); returns a client that sends the session's token.</summary>
    private async Task<HttpClient> SignInAsync(string user)
    {
        var client = Client();
        var token = DashboardApp.TokenFrom(await client.GetAsync("/login", Ct));
        var r = await client.PostAsync("/auth/login", Form(user, Password, token), Ct);
        Assert.Equal(HttpStatusCode.Redirect, r.StatusCode);
        Assert.Equal("/", r.Headers.Location!.ToString());
        await DashboardApp.AddAntiforgeryTokenAsync(client);
        return client;
    }

    private static FormUrlEncodedContent Form(string user, string password, string? token) => new(new Dictionary<string, string>
    {
        ["username"] = user,
        ["password"] = password,
        ["returnUrl"] = "/",
        ["__RequestVerificationToken"] = token ?? "",
    });

    private static IEnumerable<(string Method, string Pattern)> Endpoints(IEndpointRouteBuilder host) =>
        host.DataSources.SelectMany(d => d.Endpoints).OfType<RouteEndpoint>()
            .SelectMany(e => (e.Metadata.GetMetadata<IHttpMethodMetadata>()?.HttpMethods ?? ["GET"]).Select(m => (m, Pattern(e.RoutePattern.RawText!))))
            .Distinct();

    private static string Pattern(string raw) => "/" + raw.Trim('/');

    // Route parameters get a value every constraint accepts ({serial}, {page:int} → 1); catch-alls too.
    private static string Concrete(string pattern) => RouteParameter().Replace(pattern, "1");

    [GeneratedRegex(@"\{[^}]+\}")]
    private static partial Regex RouteParameter();

    [Fact]
    public async Task EveryMappedEndpoint_RefusesAnonymousCallers_UnlessAllowListed()
    {
        var endpoints = Endpoints(_host).ToList();
        // The enumeration must see the endpoints that matter, or the test proves nothing.
        foreach (var expected in new[] { "GET /api/quarantine", "POST /api/hubs", "DELETE /api/hubs/{hubId}", "GET /api/pumps/{serial}/events",
                     "GET /api/pumps/{serial}/flow", "GET /api/pumps/{serial}", "GET /api/audit", "POST /api/anomalies/{id}/acknowledge" })
        {
            Assert.Contains(expected, endpoints.Select(e => $"{e.Method} {e.Pattern}"));
        }

        using var anonymous = Client();
        var open = new List<string>();
        foreach (var (method, pattern) in endpoints)
        {
            var key = $"{method} {pattern}";
            using var request = new HttpRequestMessage(new HttpMethod(method), Concrete(pattern));
            if (method is "POST" or "PUT" or "PATCH")
            {
                request.Content = JsonContent.Create(new { });
            }

            using var response = await anonymous.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, Ct);
            var refused = response.StatusCode is HttpStatusCode.Unauthorized
                || (response.StatusCode == HttpStatusCode.Redirect && new Uri(_base, response.Headers.Location!).AbsolutePath == "/login");
            if (!refused && !AllowList.Contains(key))
            {
                open.Add($"{key} answered {(int)response.StatusCode} {response.Headers.Location}");
            }
        }

        Assert.Empty(open);
    }

    [Fact]
    public async Task GatewayHost_MapsNothingButHealthAndMetrics()
    {
        // What src/Gateway.Host/Program.cs maps over its services (the MQTT side needs no HTTP).
        var builder = WebApplication.CreateBuilder(new WebApplicationOptions { EnvironmentName = "Production" });
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        builder.AddServiceDefaults();
        await using var gateway = builder.Build();
        PumpFleet.Gateway.Hosting.GatewayEndpoints.MapPumpFleetGatewayEndpoints(gateway);
        await gateway.StartAsync(Ct);
        Assert.All(Endpoints(gateway), e => Assert.Contains($"{e.Method} {e.Pattern}", AllowList));
        await gateway.StopAsync(Ct);
    }

    [Fact]
    public async Task EveryStateChange_WithTheSessionCookieButWithoutTheAntiforgeryToken_IsRefused()
    {
        using var admin = await SignInAsync("adam");
        var token = admin.DefaultRequestHeaders.GetValues("X-XSRF-TOKEN").Single();
        admin.DefaultRequestHeaders.Remove("X-XSRF-TOKEN");
        var unsafeEndpoints = Endpoints(_host).Where(e => e.Method is not ("GET" or "HEAD")).ToList();
        Assert.Contains(unsafeEndpoints, e => e.Pattern == "/api/hubs");
        foreach (var (method, pattern) in unsafeEndpoints)
        {
            using var forged = new HttpRequestMessage(new HttpMethod(method), Concrete(pattern)) { Content = JsonContent.Create(new { }) };
            using var response = await admin.SendAsync(forged, Ct);
            Assert.True(response.StatusCode == HttpStatusCode.BadRequest, $"{method} {pattern} without the token answered {(int)response.StatusCode}");
            Assert.Contains("Antiforgery", await response.Content.ReadAsStringAsync(Ct), StringComparison.Ordinal);
        }

        // The same session with its token works (the cross-site page cannot read it).
        using var withToken = new HttpRequestMessage(HttpMethod.Post, "/api/hubs") { Content = JsonContent.Create(new { hubId = $"csrf-{Guid.NewGuid():N}"[..20] }) };
        withToken.Headers.Add("X-XSRF-TOKEN", token);
        Assert.Equal(HttpStatusCode.Created, (await admin.SendAsync(withToken, Ct)).StatusCode);
        // And a sign-in form posted from elsewhere (no token) is refused as well.
        using var elsewhere = Client();
        Assert.Equal(HttpStatusCode.BadRequest, (await elsewhere.PostAsync("/auth/login", Form("adam", Password, null), Ct)).StatusCode);
    }

    [Fact]
    public async Task Roles_CannotBeEscalated_ViewerAnalystAdmin()
    {
        var hubId = $"esc-{Guid.NewGuid():N}"[..20];
        using var viewer = Client(ViewerKey);
        using var analyst = Client(AnalystKey);
        using var admin = Client(AdminKey);
        using var viewerUser = await SignInAsync("vera");

        foreach (var c in new[] { viewer, viewerUser })
        {
            Assert.Equal(HttpStatusCode.OK, (await c.GetAsync("/api/pumps/SN0001", Ct)).StatusCode);
            Assert.Equal(HttpStatusCode.Forbidden, (await c.PostAsJsonAsync("/api/anomalies/NO-SUCH/acknowledge", new { note = "x" }, Ct)).StatusCode);
            Assert.Equal(HttpStatusCode.Forbidden, (await c.PostAsJsonAsync("/api/hubs", new { hubId }, Ct)).StatusCode);
            Assert.Equal(HttpStatusCode.Forbidden, (await c.GetAsync("/api/audit", Ct)).StatusCode);
            Assert.Equal(HttpStatusCode.Forbidden, (await c.PostAsJsonAsync("/api/therapies/TH-ROLE-1/open", new { }, Ct)).StatusCode);
        }

        // Therapy commands are the analyst's (the clinical role): allowed through to the rules, which find no such therapy.
        Assert.Equal(HttpStatusCode.NotFound, (await analyst.PostAsJsonAsync("/api/therapies/TH-NO-SUCH-1/trial", new { kind = "single-dose" }, Ct)).StatusCode);

        Assert.Equal(HttpStatusCode.NotFound, (await analyst.PostAsJsonAsync("/api/anomalies/NO-SUCH/acknowledge", new { note = "x" }, Ct)).StatusCode);
        Assert.Equal(HttpStatusCode.Forbidden, (await analyst.PostAsJsonAsync("/api/hubs", new { hubId }, Ct)).StatusCode);
        Assert.Equal(HttpStatusCode.Forbidden, (await analyst.PostAsync($"/api/hubs/{hubId}/rotate", JsonContent.Create(new { }), Ct)).StatusCode);
        Assert.Equal(HttpStatusCode.Forbidden, (await analyst.DeleteAsync($"/api/hubs/{hubId}", Ct)).StatusCode);
        Assert.Equal(HttpStatusCode.Forbidden, (await analyst.PostAsync("/api/admin/projections/pumps/rebuild", null, Ct)).StatusCode);
        Assert.Equal(HttpStatusCode.Forbidden, (await analyst.GetAsync("/api/audit", Ct)).StatusCode);

        Assert.Equal(HttpStatusCode.Created, (await admin.PostAsJsonAsync("/api/hubs", new { hubId }, Ct)).StatusCode);

        // The audit trail names the machine user and its role for the write, and the refusals of the others.
        var audit = await _host.Services.GetRequiredService<AuditLog>().QueryAsync(new(Target: hubId), Ct);
        var provision = Assert.Single(audit, a => a.Action == "hub.provision");
        Assert.Equal(("machine", "api:provisioner", "admin", 200), (provision.ActorKind, provision.Actor, provision.Role, provision.Outcome));
        var reads = await _host.Services.GetRequiredService<AuditLog>().QueryAsync(new(Actor: "vera", Action: "pump.read", Target: "SN0001"), Ct);
        Assert.Equal("user", Assert.Single(reads).ActorKind);
    }

    [Fact]
    public async Task SignInFlood_IsThrottled_AndAGuessedUserIsLockedOut()
    {
        // Lockout: five wrong passwords lock the name; the right one is then refused too, other users are not affected.
        using var guesser = Client();
        var token = DashboardApp.TokenFrom(await guesser.GetAsync("/login", Ct));
        for (var i = 0; i < SignInLockout.MaxFailures; i++)
        {
            var wrong = await guesser.PostAsync("/auth/login", Form("lola", "guess-" + i, token), Ct);
            Assert.Contains("failed=1", wrong.Headers.Location!.ToString(), StringComparison.Ordinal);
        }

        var right = await guesser.PostAsync("/auth/login", Form("lola", Password, token), Ct);
        Assert.Contains("failed=1", right.Headers.Location!.ToString(), StringComparison.Ordinal);
        var locked = await _host.Services.GetRequiredService<AuditLog>().QueryAsync(new(Actor: "lola", Action: "auth.sign-in"), Ct);
        Assert.Equal(423, locked[0].Outcome);

        // Flood: beyond the per-address limit the sign-in answers 429 without looking at the password.
        var statuses = new List<HttpStatusCode>();
        for (var i = 0; i < SignInsPerMinute + 5; i++)
        {
            statuses.Add((await guesser.PostAsync("/auth/login", Form("nobody-" + i, "x", token), Ct)).StatusCode);
        }

        Assert.Contains(HttpStatusCode.TooManyRequests, statuses);
    }

    [Fact]
    public async Task SignInLockout_IsSharedByDashboardReplicas()
    {
        // Two replicas on one database: the guesses are spread over both (as a load balancer would), and the lockout
        // holds on both, so guessing through several replicas gains nothing.
        var (second, secondBase) = await StartDashboardAsync();
        try
        {
            using var one = Client();
            using var two = Client(baseAddress: secondBase);
            var tokenOne = DashboardApp.TokenFrom(await one.GetAsync("/login", Ct));
            var tokenTwo = DashboardApp.TokenFrom(await two.GetAsync("/login", Ct));
            for (var i = 0; i < SignInLockout.MaxFailures; i++)
            {
                var (client, token) = i % 2 == 0 ? (one, tokenOne) : (two, tokenTwo);
                var wrong = await client.PostAsync("/auth/login", Form("rhea", "guess-" + i, token), Ct);
                Assert.Contains("failed=1", wrong.Headers.Location!.ToString(), StringComparison.Ordinal);
            }

            // Neither replica alone saw five failures (3 and 2), yet both refuse the right password now.
            foreach (var (client, token) in new[] { (one, tokenOne), (two, tokenTwo) })
            {
                var right = await client.PostAsync("/auth/login", Form("rhea", Password, token), Ct);
                Assert.Contains("failed=1", right.Headers.Location!.ToString(), StringComparison.Ordinal);
            }

            var attempts = await _host.Services.GetRequiredService<AuditLog>().QueryAsync(new(Actor: "rhea", Action: "auth.sign-in"), Ct);
            Assert.Equal([423, 423, 401, 401, 401, 401, 401], attempts.Select(a => a.Outcome));

            // Another user is not affected, on either replica.
            using var vera = Client(baseAddress: secondBase);
            var veraToken = DashboardApp.TokenFrom(await vera.GetAsync("/login", Ct));
            Assert.Equal("/", (await vera.PostAsync("/auth/login", Form("vera", Password, veraToken), Ct)).Headers.Location!.ToString());
        }
        finally
        {
            await second.StopAsync(CancellationToken.None);
            await second.DisposeAsync();
        }
    }

    [Fact]
    public async Task RevokedApiKey_AndRemovedOrDowngradedUsers_LoseAccessAtOnce()
    {
        using var key = Client(ViewerKey);
        Assert.Equal(HttpStatusCode.OK, (await key.GetAsync("/api/pumps", Ct)).StatusCode);
        using var dora = await SignInAsync("dora");
        Assert.Equal(HttpStatusCode.OK, (await dora.GetAsync("/api/audit", Ct)).StatusCode);

        var config = (IConfigurationRoot)_host.Configuration;
        config["Dashboard:Auth:ApiKeys:reporting"] = "a-brand-new-key-0123456789";
        config["Dashboard:Auth:Users:dora:Role"] = "viewer";
        config.Reload();
        try
        {
            Assert.Equal(HttpStatusCode.Unauthorized, (await key.GetAsync("/api/pumps", Ct)).StatusCode);
            Assert.Equal(HttpStatusCode.Forbidden, (await dora.GetAsync("/api/audit", Ct)).StatusCode);
            Assert.Equal(HttpStatusCode.OK, (await dora.GetAsync("/api/pumps", Ct)).StatusCode);

            // Both changes of the directory are in the audit trail, recorded by the configuration reload.
            var audit = _host.Services.GetRequiredService<AuditLog>();
            await PumpFleet.TestSupport.Eventually.TrueAsync(async () =>
                (await audit.QueryAsync(new(Action: "user.role", Target: "dora"), Ct)).Any(a => a.Detail!.Contains("\"to\": \"viewer\"", StringComparison.Ordinal))
                && (await audit.QueryAsync(new(Action: "apikey.credential", Target: "reporting"), Ct)).Count > 0,
                TimeSpan.FromSeconds(10), "the directory changes were audited");

            config["Dashboard:Auth:Users:dora:PasswordHash"] = PasswordHasher.Hash("a-new-password");
            config.Reload();
            Assert.Equal(HttpStatusCode.Unauthorized, (await dora.GetAsync("/api/pumps", Ct)).StatusCode);
        }
        finally
        {
            config["Dashboard:Auth:ApiKeys:reporting"] = ViewerKey;
            config["Dashboard:Auth:Users:dora:Role"] = "admin";
            config.Reload();
        }
    }

    [Fact]
    public async Task Responses_CarryTheSecurityHeaders_AndCookiesAreHardened()
    {
        using var client = Client();
        using var page = await client.GetAsync("/login", Ct);
        var csp = string.Join(";", page.Headers.GetValues("Content-Security-Policy"));
        Assert.Contains("script-src 'self';", csp, StringComparison.Ordinal);
        Assert.Contains("frame-ancestors 'none'", csp, StringComparison.Ordinal);
        Assert.Equal("nosniff", page.Headers.GetValues("X-Content-Type-Options").Single());
        Assert.Equal("no-referrer", page.Headers.GetValues("Referrer-Policy").Single());
        Assert.All(page.Headers.GetValues("Set-Cookie").Where(c => c.StartsWith("pumpfleet.af", StringComparison.Ordinal)),
            c => Assert.Contains("samesite=strict", c, StringComparison.OrdinalIgnoreCase));
        // No page carries inline script (the CSP would block it).
        foreach (var name in new[] { "login", "fleet", "pump", "alerts", "surveillance", "audit" })
        {
            using var stream = typeof(DashboardOptions).Assembly.GetManifestResourceStream($"pages/{name}.html")!;
            var html = await new StreamReader(stream).ReadToEndAsync(Ct);
            Assert.DoesNotMatch(@"<script(?![^>]*\bsrc=)[^>]*>", html);
            Assert.DoesNotMatch(@"\son[a-z]+\s*=", html);
        }
    }

    [Theory]
    [InlineData("/alerts", true)]
    [InlineData("/pump?serial=SN1", true)]
    [InlineData("https://evil.example/", false)]
    [InlineData("//evil.example/", false)]
    [InlineData("/\\evil.example/", false)]
    [InlineData("/ok\\..\\x", false)]
    [InlineData("", false)]
    [InlineData("alerts", false)]
    public void ReturnUrl_OnlyLocalPaths(string url, bool local) => Assert.Equal(local, DashboardHostingExtensions.IsLocalPath(url));

    [Fact]
    public void LocalSignIn_OutsideDevelopment_IsRefusedUnlessLoopbackOnlyIsChosen()
    {
        var production = new DashboardOptionsValidator(new TestEnvironment("Production"));
        var options = new DashboardOptions { Auth = { Mode = "Local" } };
        Assert.Contains("refused outside the Development environment", production.Validate(null, options).FailureMessage, StringComparison.Ordinal);
        options.Auth.AllowLocalOnLoopback = true;
        Assert.True(production.Validate(null, options).Succeeded);
        Assert.True(new DashboardOptionsValidator(new TestEnvironment("Development")).Validate(null, new DashboardOptions { Auth = { Mode = "Local" } }).Succeeded);
    }

    private sealed class TestEnvironment(string name) : IHostEnvironment
    {
        public string EnvironmentName { get; set; } = name;
        public string ApplicationName { get; set; } = "test";
        public string ContentRootPath { get; set; } = "/";
        public Microsoft.Extensions.FileProviders.IFileProvider ContentRootFileProvider { get; set; } = new Microsoft.Extensions.FileProviders.NullFileProvider();
    }
}
