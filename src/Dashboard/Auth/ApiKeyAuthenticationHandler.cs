using System.Security.Cryptography;
using System.Text;
using System.Text.Encodings.Web;
using Microsoft.AspNetCore.Authentication;
using Microsoft.Extensions.Options;
using PumpFleet.Dashboard.Hosting;

namespace PumpFleet.Dashboard.Auth;

/// <summary>
/// API clients: header <c>X-Api-Key: &lt;key&gt;</c> or <c>Authorization: Bearer &lt;key&gt;</c>. Keys are compared
/// by their SHA-256 in constant time so neither timing nor the dictionary order gives anything away. Each key is a
/// named machine user (<c>api:&lt;name&gt;</c> in the audit trail) with its role; the current configuration is read on
/// every request, so a key removed or replaced (revoked) stops working as soon as the configuration reloads.
/// </summary>
internal sealed class ApiKeyAuthenticationHandler(
    IOptionsMonitor<AuthenticationSchemeOptions> options, ILoggerFactory logger, UrlEncoder encoder, IOptionsMonitor<DashboardOptions> dashboard)
    : AuthenticationHandler<AuthenticationSchemeOptions>(options, logger, encoder)
{
    public const string SchemeName = "ApiKey";
    public const string HeaderName = "X-Api-Key";

    public static string? KeyFrom(HttpRequest request)
    {
        if (request.Headers.TryGetValue(HeaderName, out var key) && !string.IsNullOrEmpty(key))
        {
            return key.ToString();
        }

        var auth = request.Headers.Authorization.ToString();
        return auth.StartsWith("Bearer ", StringComparison.OrdinalIgnoreCase) ? auth["Bearer ".Length..].Trim() : null;
    }

    protected override Task<AuthenticateResult> HandleAuthenticateAsync()
    {
        var key = KeyFrom(Request);
        if (key is null)
        {
            return Task.FromResult(AuthenticateResult.NoResult());
        }

        var presented = SHA256.HashData(Encoding.UTF8.GetBytes(key));
        string? match = null;
        foreach (var (name, secret) in dashboard.CurrentValue.Auth.ApiKeys)
        {
            if (CryptographicOperations.FixedTimeEquals(presented, SHA256.HashData(Encoding.UTF8.GetBytes(secret))))
            {
                match = name;
            }
        }

        if (match is null)
        {
            return Task.FromResult(AuthenticateResult.Fail("Unknown API key."));
        }

        var role = dashboard.CurrentValue.Auth.ApiKeyRoles.GetValueOrDefault(match, Roles.Viewer);
        return Task.FromResult(AuthenticateResult.Success(new AuthenticationTicket(Principals.Create("api:" + match, role, SchemeName), SchemeName)));
    }
}
