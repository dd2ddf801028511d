using System.Security.Claims;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Authentication.Cookies;
using Microsoft.Extensions.Options;
using PumpFleet.Dashboard.Hosting;

namespace PumpFleet.Dashboard.Auth;

/// <summary>
/// Checks every cookie session against the current user list (configuration, reloaded when it changes): a removed
/// user is signed out, a user whose role changed continues with the new role at once. A session issued before the
/// user's password changed is rejected too (the cookie carries a fingerprint of the password hash).
/// </summary>
internal static class SessionRevalidation
{
    public const string StampClaim = "pumpfleet:stamp";

    public static string Stamp(string passwordHash) =>
        Convert.ToHexString(System.Security.Cryptography.SHA256.HashData(System.Text.Encoding.UTF8.GetBytes(passwordHash)))[..16];

    public static async Task ValidateAsync(CookieValidatePrincipalContext context)
    {
        var name = context.Principal?.Identity?.Name;
        var users = context.HttpContext.RequestServices.GetRequiredService<IOptionsMonitor<DashboardOptions>>().CurrentValue.Auth.Users;
        if (name is null || !users.TryGetValue(name, out var user)
            || !string.Equals(context.Principal!.FindFirstValue(StampClaim), Stamp(user.PasswordHash), StringComparison.Ordinal))
        {
            context.RejectPrincipal();
            await context.HttpContext.SignOutAsync(CookieAuthenticationDefaults.AuthenticationScheme);
            return;
        }

        var roles = context.Principal!.FindAll(ClaimTypes.Role).Select(c => c.Value).ToList();
        if (!roles.SequenceEqual(Roles.Implied(user.Role)))
        {
            context.ReplacePrincipal(Principals.Create(name, user.Role, CookieAuthenticationDefaults.AuthenticationScheme, Stamp(user.PasswordHash)));
            context.ShouldRenew = true;
        }
    }
}
