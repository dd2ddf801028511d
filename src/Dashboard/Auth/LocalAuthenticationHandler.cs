using System.Security.Claims;
using System.Text.Encodings.Web;
using Microsoft.AspNetCore.Authentication;
using Microsoft.Extensions.Options;

namespace PumpFleet.Dashboard.Auth;

/// <summary>
/// <c>Dashboard:Auth:Mode=Local</c>: every request is the local admin. In the Development environment only, or, with
/// <c>Dashboard:Auth:AllowLocalOnLoopback</c>, for requests from the loopback address only (anyone else is anonymous,
/// so gets 401): a developer's all-in-one, never a shared host.
/// </summary>
internal sealed class LocalAuthenticationHandler(
    IOptionsMonitor<AuthenticationSchemeOptions> options, ILoggerFactory logger, UrlEncoder encoder, IHostEnvironment environment)
    : AuthenticationHandler<AuthenticationSchemeOptions>(options, logger, encoder)
{
    public const string SchemeName = "Local";

    protected override Task<AuthenticateResult> HandleAuthenticateAsync()
    {
        var remote = Context.Connection.RemoteIpAddress;
        if (!environment.IsDevelopment() && (remote is null || !System.Net.IPAddress.IsLoopback(remote)))
        {
            return Task.FromResult(AuthenticateResult.NoResult());
        }

        return Task.FromResult(AuthenticateResult.Success(new AuthenticationTicket(Principals.Create("local-admin", Roles.Admin, SchemeName), SchemeName)));
    }
}

/// <summary>Builds principals with the implied role claims.</summary>
internal static class Principals
{
    public static ClaimsPrincipal Create(string name, string role, string scheme, string? stamp = null)
    {
        var claims = new List<Claim> { new(ClaimTypes.Name, name) };
        if (stamp is not null)
        {
            claims.Add(new Claim(SessionRevalidation.StampClaim, stamp));
        }

        claims.AddRange(Roles.Implied(role).Select(r => new Claim(ClaimTypes.Role, r)));
        return new ClaimsPrincipal(new ClaimsIdentity(claims, scheme, ClaimTypes.Name, ClaimTypes.Role));
    }
}
