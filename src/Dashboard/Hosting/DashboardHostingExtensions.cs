using System.Security.Claims;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Authentication.Cookies;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Options;
using Orleans.Dashboard;
using PumpFleet.Dashboard.Api;
using PumpFleet.Dashboard.Auth;
using PumpFleet.EventStore;
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
        services.AddOptions<DashboardOptions>().BindConfiguration(DashboardOptions.SectionName).ValidateDataAnnotations().ValidateOnStart();
        services.AddSingleton<IValidateOptions<DashboardOptions>, DashboardOptionsValidator>();
        var developmentDefault = builder.Environment.IsDevelopment() ? "Local" : "Cookie";
        services.PostConfigure<DashboardOptions>(o => o.Auth.Mode ??= developmentDefault);
        services.AddProblemDetails();
        services.AddOpenApi();
        services.ConfigureHttpJsonOptions(o => o.SerializerOptions.DefaultIgnoreCondition = System.Text.Json.Serialization.JsonIgnoreCondition.Never);

        var mode = builder.Configuration[$"{DashboardOptions.SectionName}:Auth:Mode"] ?? developmentDefault;
        var local = string.Equals(mode, "Local", StringComparison.OrdinalIgnoreCase);
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
                    o.SlidingExpiration = true;
                    o.ExpireTimeSpan = TimeSpan.FromHours(8);
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
        }

        app.UseStatusCodePages();
        app.UseStaticFiles(new StaticFileOptions { FileProvider = new EmbeddedAssets(assembly, "wwwroot") });
        app.MapOpenApi().AllowAnonymous();

        var pages = new EmbeddedAssets(assembly, "pages");
        IResult Page(string name) => Results.Stream(pages.GetFileInfo(name + ".html").CreateReadStream(), "text/html; charset=utf-8");
        app.MapGet("/", () => Page("fleet")).RequireAuthorization(Roles.CanView).ExcludeFromDescription();
        app.MapGet("/pump", () => Page("pump")).RequireAuthorization(Roles.CanView).ExcludeFromDescription();
        app.MapGet("/alerts", () => Page("alerts")).RequireAuthorization(Roles.CanView).ExcludeFromDescription();
        app.MapGet("/surveillance", () => Page("surveillance")).RequireAuthorization(Roles.CanView).ExcludeFromDescription();
        app.MapGet("/login", () => Page("login")).AllowAnonymous().ExcludeFromDescription();
        app.MapPost("/auth/login", SignInAsync).AllowAnonymous().ExcludeFromDescription();
        app.MapPost("/auth/logout", async (HttpContext ctx) =>
        {
            if (!string.Equals(options.Auth.Mode, "Local", StringComparison.OrdinalIgnoreCase))
            {
                await ctx.SignOutAsync(CookieAuthenticationDefaults.AuthenticationScheme);
            }

            return Results.Redirect("/login");
        }).ExcludeFromDescription();

        var api = app.MapGroup("/api").RequireAuthorization(Roles.CanView).WithTags("PumpFleet");
        api.MapGet("/me", (ClaimsPrincipal user, IOptions<DashboardOptions> o) => new
        {
            name = user.Identity?.Name,
            roles = user.FindAll(ClaimTypes.Role).Select(c => c.Value).ToArray(),
            mode = o.Value.Auth.Mode,
        }).WithName("Me").WithSummary("Who is signed in, with which roles");
        api.MapPumpEndpoints();
        api.MapAnomalyEndpoints();
        api.MapCohortEndpoints();
        api.MapLiveEndpoints();
        api.MapAdminEndpoints();

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

    private static async Task<IResult> SignInAsync(HttpContext ctx, IOptions<DashboardOptions> options)
    {
        var form = await ctx.Request.ReadFormAsync(ctx.RequestAborted);
        var user = form["username"].ToString();
        var password = form["password"].ToString();
        var returnUrl = form["returnUrl"].ToString();
        // Only local paths: an open redirect would turn the sign-in form into a phishing aid.
        if (string.IsNullOrEmpty(returnUrl) || !returnUrl.StartsWith('/') || returnUrl.StartsWith("//", StringComparison.Ordinal) || returnUrl.StartsWith("/\\", StringComparison.Ordinal))
        {
            returnUrl = "/";
        }

        if (string.Equals(options.Value.Auth.Mode, "Local", StringComparison.OrdinalIgnoreCase))
        {
            return Results.Redirect(returnUrl);
        }

        if (!options.Value.Auth.Users.TryGetValue(user, out var u) || !PasswordHasher.Verify(password, u.PasswordHash))
        {
            return Results.Redirect("/login?failed=1&ReturnUrl=" + Uri.EscapeDataString(returnUrl));
        }

        await ctx.SignInAsync(CookieAuthenticationDefaults.AuthenticationScheme, Principals.Create(user, u.Role, CookieAuthenticationDefaults.AuthenticationScheme));
        return Results.Redirect(returnUrl);
    }

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
