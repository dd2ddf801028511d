using Microsoft.AspNetCore.Antiforgery;
using PumpFleet.Dashboard.Auth;

namespace PumpFleet.Dashboard.Hosting;

/// <summary>
/// Security headers on every response and antiforgery on every state change a browser can make: a request with an
/// unsafe method that is not authenticated by an API key header (which a cross-site form cannot send) must carry
/// the antiforgery token, as the <c>X-XSRF-TOKEN</c> header (the UI's fetch calls) or the form field (sign-in and
/// sign-out forms). Pages put the token in the readable <c>XSRF-TOKEN</c> cookie.
/// </summary>
internal static class BrowserSecurity
{
    public const string HeaderName = "X-XSRF-TOKEN";
    public const string CookieName = "XSRF-TOKEN";

    // No inline script anywhere (the pages load /app/*.js); inline styles remain in a few attributes and Chart.js.
    private const string Csp =
        "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; " +
        "object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'";

    // The Orleans dashboard (a third-party page, admin only) bootstraps with inline script of its own.
    private const string OrleansDashboardCsp =
        "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; " +
        "object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'";

    public static WebApplication UseBrowserSecurity(this WebApplication app, string? orleansDashboardPath)
    {
        app.Use(async (ctx, next) =>
        {
            var h = ctx.Response.Headers;
            var orleans = !string.IsNullOrEmpty(orleansDashboardPath) && ctx.Request.Path.StartsWithSegments(orleansDashboardPath.TrimEnd('/'), StringComparison.OrdinalIgnoreCase);
            h.ContentSecurityPolicy = orleans ? OrleansDashboardCsp : Csp;
            h.XContentTypeOptions = "nosniff";
            h.XFrameOptions = "DENY";
            h["Referrer-Policy"] = "no-referrer";
            h["Cross-Origin-Opener-Policy"] = "same-origin";

            if (!HttpMethods.IsGet(ctx.Request.Method) && !HttpMethods.IsHead(ctx.Request.Method) && !HttpMethods.IsOptions(ctx.Request.Method)
                && ApiKeyAuthenticationHandler.KeyFrom(ctx.Request) is null)
            {
                var antiforgery = ctx.RequestServices.GetRequiredService<IAntiforgery>();
                if (!await antiforgery.IsRequestValidAsync(ctx))
                {
                    await Results.Problem(statusCode: StatusCodes.Status400BadRequest, title: "Antiforgery token missing or invalid",
                        detail: $"State changes from a browser need the token of the {CookieName} cookie in the {HeaderName} header or the form.")
                        .ExecuteAsync(ctx);
                    return;
                }
            }

            await next(ctx);
        });
        return app;
    }

    /// <summary>Issues the request token for the current user in the readable cookie (pages call this).</summary>
    public static void IssueToken(HttpContext ctx)
    {
        var tokens = ctx.RequestServices.GetRequiredService<IAntiforgery>().GetAndStoreTokens(ctx);
        ctx.Response.Cookies.Append(CookieName, tokens.RequestToken!, new CookieOptions
        {
            HttpOnly = false,
            SameSite = SameSiteMode.Strict,
            Secure = ctx.Request.IsHttps,
            Path = "/",
        });
    }
}
