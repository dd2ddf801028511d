using System.Security.Claims;
using System.Text.Encodings.Web;
using Microsoft.AspNetCore.Authentication;
using Microsoft.Extensions.Options;

namespace PumpFleet.Dashboard.Auth;

/// <summary><c>Dashboard:Auth:Mode=Local</c>: every request is the local admin (development and all-in-one only).</summary>
internal sealed class LocalAuthenticationHandler(IOptionsMonitor<AuthenticationSchemeOptions> options, ILoggerFactory logger, UrlEncoder encoder)
    : AuthenticationHandler<AuthenticationSchemeOptions>(options, logger, encoder)
{
    public const string SchemeName = "Local";

    protected override Task<AuthenticateResult> HandleAuthenticateAsync() =>
        Task.FromResult(AuthenticateResult.Success(new AuthenticationTicket(Principals.Create("local-admin", Roles.Admin, SchemeName), SchemeName)));
}

/// <summary>Builds principals with the implied role claims.</summary>
internal static class Principals
{
    public static ClaimsPrincipal Create(string name, string role, string scheme)
    {
        var claims = new List<Claim> { new(ClaimTypes.Name, name) };
        claims.AddRange(Roles.Implied(role).Select(r => new Claim(ClaimTypes.Role, r)));
        return new ClaimsPrincipal(new ClaimsIdentity(claims, scheme, ClaimTypes.Name, ClaimTypes.Role));
    }
}
