using System.Security.Claims;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Authentication.Cookies;
using System.Threading.RateLimiting;
using Microsoft.AspNetCore.DataProtection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Options;
using Orleans.Dashboard;
using PumpFleet.Dashboard.Api;
using PumpFleet.Dashboard.Auth;
using PumpFleet.EventStore;
using PumpFleet.EventStore.Audit;
using PumpFleet.EventStore.DataProtection;
using PumpFleet.Gateway.Hosting;
using PumpFleet.Gateway.Hubs;
using PumpFleet.Gateway.Quarantine;
using PumpFleet.ReadModels;

namespace PumpFleet.Dashboard.Hosting;

/// <summary>
/// Composition of the dashboard: <see cref="AddPumpFleetDashboard"/> on the builder and
/// <see cref="MapPumpFleetDashboard"/> on the app, so the stand-alone Dashboard process and the all-in-one silo host
/// mount exactly the same thing. Orleans is the host's business: a co-hosted silo (<c>UseOrleans</c>) or a client
/// (<c>AddPumpFleetOrleansClient</c> of src/Clustering).
/// </summary>
public static class DashboardHostingExtensions
{
    private const string PolicyScheme = "PumpFleet";
    private const string SignInRateLimit = "sign-in";

    /// <summary>Registers the API, the UI, OpenAPI, problem details and sign-in.</summary>
    public static IHostApplicationBuilder AddPumpFleetDashboard(this IHostApplicationBuilder builder)
    {
        ArgumentNullException.ThrowIfNull(builder);
        var services = builder.Services;
        if (!services.Any(d => d.ServiceType == typeof(IEventStore)))
        {
            var cs = builder.Configuration.GetConnectionString(EventStoreServiceCollectionExtensions.ConnectionStringName)
                ?? throw new InvalidOperationException($"ConnectionStrings:{EventStoreServiceCollectionExtensions.ConnectionStringName} is not set (Npgsql connection string of the PumpFleet database).");
            services.AddPumpFleetEventStore(cs);
        }

        services.AddPumpFleetReadModels();
        // Hub administration and the quarantine are served here, behind the sign-in (docs/security.md); the all-in-one
        // host has registered the gateway already, a stand-alone dashboard needs only the stores.
        services.AddPumpFleetQuarantineApi();
        services.TryAddSingleton<HubStore>();
        services.TryAddSingleton<HubAdmin>();
        if (!services.Any(d => d.ServiceType == typeof(IConfigureOptions<HubAuthOptions>)))
        {
            services.AddOptions<HubAuthOptions>().BindConfiguration(HubAuthOptions.SectionName);
        }

        services.TryAddSingleton(TimeProvider.System);
        services.TryAddSingleton<Api.OverviewCache>();
        // The API's list reads, shared by every browser and recomputed once per read-model version (docs/architecture.md).
        services.TryAddSingleton<Caching.ReadCacheMetrics>();
        services.TryAddSingleton<Caching.ReadModelVersion>();
        services.TryAddSingleton<Caching.SharedReadCache>();
        services.TryAddSingleton<SignInLockout>();
        services.AddHostedService<DirectoryAudit>();
        // The live channel: one stream subscription and one summary poll per process, shared by every browser.
        services.TryAddSingleton<Live.LiveFeed>();
        services.AddHostedService(sp => sp.GetRequiredService<Live.LiveFeed>());
        services.AddOptions<DashboardOptions>().BindConfiguration(DashboardOptions.SectionName).ValidateOnStart();
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<DashboardOptions>, DashboardOptionsValidator>());
        var developmentDefault = builder.Environment.IsDevelopment() ? "Local" : "Cookie";
        services.PostConfigure<DashboardOptions>(o => o.Auth.Mode ??= developmentDefault);
        services.AddProblemDetails();
        services.AddOpenApi();
        services.ConfigureHttpJsonOptions(o => o.SerializerOptions.DefaultIgnoreCondition = System.Text.Json.Serialization.JsonIgnoreCondition.Never);

        var mode = builder.Configuration[$"{DashboardOptions.SectionName}:Auth:Mode"] ?? developmentDefault;
        var local = string.Equals(mode, "Local", StringComparison.OrdinalIgnoreCase);
        var development = builder.Environment.IsDevelopment();
        // Secure cookies outside Development; AllowHttpCookies is for a plain-HTTP loopback test host only.
        var httpCookies = development || builder.Configuration.GetValue($"{DashboardOptions.SectionName}:Auth:AllowHttpCookies", false);
        var cookiePolicy = httpCookies ? CookieSecurePolicy.SameAsRequest : CookieSecurePolicy.Always;

        // Every replica reads and writes one key ring, so a cookie or antiforgery token issued by one is accepted by all.
        services.AddDataProtection().SetApplicationName("PumpFleet.Dashboard").PersistKeysToPumpFleetDatabase();
        services.AddAntiforgery(o =>
        {
            o.HeaderName = BrowserSecurity.HeaderName;
            o.Cookie.Name = "pumpfleet.af";
            o.Cookie.SameSite = SameSiteMode.Strict;
            o.Cookie.SecurePolicy = cookiePolicy;
        });
        var signInsPerMinute = builder.Configuration.GetValue($"{DashboardOptions.SectionName}:Auth:SignInAttemptsPerMinute", 10);
        services.AddRateLimiter(o =>
        {
            o.RejectionStatusCode = StatusCodes.Status429TooManyRequests;
            // Per client address (behind a proxy: after the forwarded-headers middleware); SignInLockout also locks the
            // user name after 5 failures, whatever the address.
            o.AddPolicy(SignInRateLimit, ctx => RateLimitPartition.GetFixedWindowLimiter(
                ctx.Connection.RemoteIpAddress?.ToString() ?? "unknown",
                _ => new FixedWindowRateLimiterOptions { PermitLimit = signInsPerMinute, Window = TimeSpan.FromMinutes(1), QueueLimit = 0 }));
        });
        if (!development)
        {
            services.AddHsts(o => o.MaxAge = TimeSpan.FromDays(365));
        }

        var auth = services.AddAuthentication(local ? LocalAuthenticationHandler.SchemeName : PolicyScheme);
        if (local)
        {
            auth.AddScheme<AuthenticationSchemeOptions, LocalAuthenticationHandler>(LocalAuthenticationHandler.SchemeName, null);
        }
        else
        {
            auth.AddPolicyScheme(PolicyScheme, "Cookie or API key", o => o.ForwardDefaultSelector = ctx =>
                    ApiKeyAuthenticationHandler.KeyFrom(ctx.Request) is null ? CookieAuthenticationDefaults.AuthenticationScheme : ApiKeyAuthenticationHandler.SchemeName)
                .AddScheme<AuthenticationSchemeOptions, ApiKeyAuthenticationHandler>(ApiKeyAuthenticationHandler.SchemeName, null)
                .AddCookie(CookieAuthenticationDefaults.AuthenticationScheme, o =>
                {
                    o.LoginPath = "/login";
                    o.Cookie.Name = "pumpfleet.auth";
                    o.Cookie.HttpOnly = true;
                    o.Cookie.SameSite = SameSiteMode.Strict;
                    o.Cookie.SecurePolicy = cookiePolicy;
                    o.SlidingExpiration = true;
                    o.ExpireTimeSpan = TimeSpan.FromHours(8);
                    // Every request re-checks the user against the current user list: removed or downgraded users
                    // lose access as soon as the configuration reloads.
                    o.Events.OnValidatePrincipal = SessionRevalidation.ValidateAsync;
                    // The API answers 401/403 problem details; only pages redirect to the sign-in form.
                    o.Events.OnRedirectToLogin = ctx => ApiOr(ctx, StatusCodes.Status401Unauthorized);
                    o.Events.OnRedirectToAccessDenied = ctx => ApiOr(ctx, StatusCodes.Status403Forbidden);
                });
        }

        services.AddAuthorizationBuilder()
            .AddPolicy(Roles.CanView, p => p.RequireRole(Roles.Viewer))
            .AddPolicy(Roles.CanTriage, p => p.RequireRole(Roles.Analyst))
            .AddPolicy(Roles.CanAdminister, p => p.RequireRole(Roles.Admin));
        return builder;
    }

    /// <summary>Maps the UI pages and assets, <c>/api</c>, <c>/openapi/v1.json</c>, sign-in and the Orleans dashboard.</summary>
    public static WebApplication MapPumpFleetDashboard(this WebApplication app)
    {
        ArgumentNullException.ThrowIfNull(app);
        var options = app.Services.GetRequiredService<IOptions<DashboardOptions>>().Value;
        var assembly = typeof(DashboardHostingExtensions).Assembly;
        // Unhandled errors and bare status codes (401, 403, 404 of unknown routes) also answer as RFC 9457 problems.
        if (!app.Environment.IsDevelopment())
        {
            app.UseExceptionHandler();
            app.UseHsts();
        }

        app.UseBrowserSecurity(options.OrleansDashboardPath);
        app.UseRateLimiter();
        app.UseStatusCodePages();
        app.UseStaticFiles(new StaticFileOptions { FileProvider = new EmbeddedAssets(assembly, "wwwroot") });
        app.MapOpenApi().AllowAnonymous();

        var pages = new EmbeddedAssets(assembly, "pages");
        IResult Page(HttpContext ctx, string name)
        {
            BrowserSecurity.IssueToken(ctx);
            return Results.Stream(pages.GetFileInfo(name + ".html").CreateReadStream(), "text/html; charset=utf-8");
        }

        app.MapGet("/", (HttpContext ctx) => Page(ctx, "fleet")).RequireAuthorization(Roles.CanView).ExcludeFromDescription();
        app.MapGet("/pump", (HttpContext ctx) => Page(ctx, "pump")).RequireAuthorization(Roles.CanView).ExcludeFromDescription();
        app.MapGet("/therapy", (HttpContext ctx) => Page(ctx, "therapy")).RequireAuthorization(Roles.CanView).ExcludeFromDescription();
        app.MapGet("/alerts", (HttpContext ctx) => Page(ctx, "alerts")).RequireAuthorization(Roles.CanView).ExcludeFromDescription();
        app.MapGet("/surveillance", (HttpContext ctx) => Page(ctx, "surveillance")).RequireAuthorization(Roles.CanView).ExcludeFromDescription();
        app.MapGet("/worklist", (HttpContext ctx) => Page(ctx, "worklist")).RequireAuthorization(Roles.CanView).ExcludeFromDescription();
        app.MapGet("/audit", (HttpContext ctx) => Page(ctx, "audit")).RequireAuthorization(Roles.CanAdminister).ExcludeFromDescription();
        app.MapGet("/login", (HttpContext ctx) => Page(ctx, "login")).AllowAnonymous().ExcludeFromDescription();
        app.MapPost("/auth/login", SignInAsync).AllowAnonymous().RequireRateLimiting(SignInRateLimit).ExcludeFromDescription();
        app.MapPost("/auth/logout", async (HttpContext ctx) =>
        {
            if (!string.Equals(options.Auth.Mode, "Local", StringComparison.OrdinalIgnoreCase))
            {
                await ctx.SignOutAsync(CookieAuthenticationDefaults.AuthenticationScheme);
            }

            return Results.Redirect("/login");
        }).RequireAuthorization(Roles.CanView).ExcludeFromDescription();

        var api = app.MapGroup("/api").RequireAuthorization(Roles.CanView).WithTags("PumpFleet");
        api.MapGet("/me", (ClaimsPrincipal user, IOptions<DashboardOptions> o) => new
        {
            name = user.Identity?.Name,
            roles = user.FindAll(ClaimTypes.Role).Select(c => c.Value).ToArray(),
            mode = o.Value.Auth.Mode,
        }).WithName("Me").WithSummary("Who is signed in, with which roles");
        api.MapPumpEndpoints();
        api.MapAnomalyEndpoints();
        api.MapTherapyEndpoints();
        api.MapCohortEndpoints();
        api.MapComplaintFileEndpoints();
        api.MapWorklistEndpoints();
        api.MapClinicEndpoints();
        api.MapOverviewEndpoints();
        api.MapLiveEndpoints();
        api.MapAdminEndpoints();
        api.MapAuditEndpoints();
        // Raw device payloads: patient-level data, so signed in and audited. Hub administration: admins only (the
        // hub admin itself writes the audit entries, with the outcome of each command).
        app.MapQuarantineApi().RequireAuthorization(Roles.CanView).Audited("quarantine.read");
        app.MapHubAdminApi().RequireAuthorization(Roles.CanAdminister);
        app.MapClinicAdminApi().RequireAuthorization(Roles.CanAdminister);

        if (!string.IsNullOrEmpty(options.OrleansDashboardPath))
        {
            // The Orleans dashboard's page uses relative asset URLs: it must be browsed with a trailing slash.
            var path = options.OrleansDashboardPath.TrimEnd('/');
            try
            {
                app.MapOrleansDashboard(path).RequireAuthorization(Roles.CanAdminister);
                // Routing treats "/orleans" and "/orleans/" alike, so the redirect to the slash form is a middleware.
                app.Use((ctx, next) =>
                {
                    if (string.Equals(ctx.Request.Path.Value, path, StringComparison.OrdinalIgnoreCase))
                    {
                        ctx.Response.Redirect(path + "/" + ctx.Request.QueryString);
                        return Task.CompletedTask;
                    }

                    return next(ctx);
                });
            }
            catch (InvalidOperationException e)
            {
                // The host did not call silo.AddDashboard() / client.AddDashboard(): the rest of the UI still works.
                DashboardLog.OrleansDashboardNotMapped(app.Logger, e.Message);
            }
        }

        return app;
    }

    private static async Task<IResult> SignInAsync(HttpContext ctx, IOptionsMonitor<DashboardOptions> monitor, SignInLockout lockout, AuditLog audit)
    {
        var options = monitor.CurrentValue;
        var form = await ctx.Request.ReadFormAsync(ctx.RequestAborted);
        var user = form["username"].ToString();
        var password = form["password"].ToString();
        var returnUrl = form["returnUrl"].ToString();
        if (!IsLocalPath(returnUrl))
        {
            returnUrl = "/";
        }

        if (string.Equals(options.Auth.Mode, "Local", StringComparison.OrdinalIgnoreCase))
        {
            return Results.Redirect(returnUrl);
        }

        var remote = HubAdminApi.Remote(ctx);
        // Bound the name so a flood of huge names cannot grow the lockout table or the audit rows.
        var name = user.Length > 128 ? user[..128] : user;
        if (await lockout.IsLockedOutAsync(name, ctx.RequestAborted))
        {
            await audit.WriteAsync(new AuditEntry(new AuditActor("user", name, null), "auth.sign-in", name, StatusCodes.Status423Locked, remote), ctx.RequestAborted);
            return Results.Redirect("/login?failed=1&ReturnUrl=" + Uri.EscapeDataString(returnUrl));
        }

        if (!options.Auth.Users.TryGetValue(user, out var u) || !PasswordHasher.Verify(password, u.PasswordHash))
        {
            await lockout.FailedAsync(name, ctx.RequestAborted);
            await audit.WriteAsync(new AuditEntry(new AuditActor("user", name, null), "auth.sign-in", name, StatusCodes.Status401Unauthorized, remote), ctx.RequestAborted);
            return Results.Redirect("/login?failed=1&ReturnUrl=" + Uri.EscapeDataString(returnUrl));
        }

        await lockout.SucceededAsync(name, ctx.RequestAborted);
        await audit.WriteAsync(new AuditEntry(new AuditActor("user", user, u.Role), "auth.sign-in", user, StatusCodes.Status200OK, remote), ctx.RequestAborted);
        await ctx.SignInAsync(CookieAuthenticationDefaults.AuthenticationScheme,
            Principals.Create(user, u.Role, CookieAuthenticationDefaults.AuthenticationScheme, SessionRevalidation.Stamp(u.PasswordHash)));
        return Results.Redirect(returnUrl);
    }

    /// <summary>Only paths of this site: an open redirect would turn the sign-in form into a phishing aid.</summary>
    internal static bool IsLocalPath(string? url) =>
        !string.IsNullOrEmpty(url) && url[0] == '/' && (url.Length == 1 || (url[1] != '/' && url[1] != '\\'))
        && !url.Any(c => char.IsControl(c) || c == '\\');

    private static Task ApiOr(RedirectContext<CookieAuthenticationOptions> ctx, int status)
    {
        if (ctx.Request.Path.StartsWithSegments("/api", StringComparison.Ordinal) || ctx.Request.Path.StartsWithSegments("/openapi", StringComparison.Ordinal))
        {
            ctx.Response.StatusCode = status;
            return Task.CompletedTask;
        }

        ctx.Response.Redirect(ctx.RedirectUri);
        return Task.CompletedTask;
    }
}
