using System.Globalization;
using System.Security.Claims;
using System.Text;

namespace PumpFleet.Dashboard.Caching;

/// <summary>
/// What a cached answer is for: the read (<paramref name="Read"/>), the caller's scope (<paramref name="Scope"/>: what
/// the caller may see) and every parameter of the query, validated and in a fixed order (<paramref name="Query"/>).
/// Two requests share an answer only when all three are equal.
/// </summary>
public sealed record ReadKey(string Read, string Scope, string Query)
{
    /// <summary>
    /// The key of a read by <paramref name="user"/> with these query parameters (null for an absent one). Each part is
    /// written with its length, so no value can pass for two (a filter text may hold any character).
    /// </summary>
    public static ReadKey For(string read, ClaimsPrincipal user, params ReadOnlySpan<object?> parts)
    {
        ArgumentNullException.ThrowIfNull(user);
        var query = new StringBuilder();
        foreach (var part in parts)
        {
            Append(query, part switch
            {
                null => null,
                string text => text,
                IEnumerable<string> list => string.Join('\u001f', list),
                IFormattable f => f.ToString(null, CultureInfo.InvariantCulture),
                _ => part.ToString(),
            });
        }

        return new ReadKey(read, ScopeOf(user), query.ToString());
    }

    /// <summary>
    /// The caller's scope: authentication and roles (docs/security.md). Every role may read the same lists today, so
    /// this only keeps roles apart; a per-user restriction (a clinic's users seeing their clinic only) would be added
    /// here, and then no answer could cross it.
    /// </summary>
    public static string ScopeOf(ClaimsPrincipal user)
    {
        ArgumentNullException.ThrowIfNull(user);
        if (user.Identity?.IsAuthenticated != true)
        {
            return "anonymous";
        }

        var roles = user.Identities.SelectMany(i => i.FindAll(c => c.Type == i.RoleClaimType || c.Type == ClaimTypes.Role))
            .Select(c => c.Value).Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal);
        var scope = new StringBuilder();
        foreach (var role in roles)
        {
            Append(scope, role);
        }

        return scope.ToString();
    }

    private static void Append(StringBuilder sb, string? value) =>
        sb.Append(value is null ? "-;" : string.Create(CultureInfo.InvariantCulture, $"{value.Length}:{value};"));
}
