using Microsoft.Extensions.Options;
using PumpFleet.Dashboard.Auth;

namespace PumpFleet.Dashboard.Hosting;

/// <summary>Checks <see cref="DashboardOptions"/> at start-up: ranges, and sign-in settings, so a typo in a hash or role fails the deployment, not a sign-in.</summary>
internal sealed class DashboardOptionsValidator(IHostEnvironment environment) : IValidateOptions<DashboardOptions>
{
    /// <summary>The largest false-discovery rate the cohort screen accepts (option and query).</summary>
    public const double MaxFalseDiscoveryRate = 0.2;

    public ValidateOptionsResult Validate(string? name, DashboardOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        var errors = new List<string>();
        if (options.MaxPageSize is < 10 or > 10_000)
        {
            errors.Add($"Dashboard:MaxPageSize must be between 10 and 10,000, not {options.MaxPageSize}.");
        }

        if (options.LiveInterval < TimeSpan.FromMilliseconds(100) || options.LiveInterval > TimeSpan.FromMinutes(1))
        {
            errors.Add($"Dashboard:LiveInterval must be between 100 ms and 1 min, not {options.LiveInterval}.");
        }

        if (options.SignalMinimumCount is < 1 or > 1000)
        {
            errors.Add($"Dashboard:SignalMinimumCount must be between 1 and 1000, not {options.SignalMinimumCount}.");
        }

        if (double.IsNaN(options.SignalFalseDiscoveryRate) || options.SignalFalseDiscoveryRate <= 0 || options.SignalFalseDiscoveryRate > MaxFalseDiscoveryRate)
        {
            errors.Add($"Dashboard:SignalFalseDiscoveryRate must be above 0 and at most {MaxFalseDiscoveryRate}, not {options.SignalFalseDiscoveryRate}.");
        }

        var cache = options.ReadCache;
        if (cache.VersionMaxAge < TimeSpan.Zero || cache.VersionMaxAge > TimeSpan.FromSeconds(10))
        {
            errors.Add($"Dashboard:ReadCache:VersionMaxAge must be between 0 and 10 s, not {cache.VersionMaxAge}.");
        }

        if (cache.MaxEntries is < 10 or > 1_000_000)
        {
            errors.Add($"Dashboard:ReadCache:MaxEntries must be between 10 and 1,000,000, not {cache.MaxEntries}.");
        }

        if (cache.Expiry < TimeSpan.FromSeconds(1) || cache.Expiry > TimeSpan.FromHours(1))
        {
            errors.Add($"Dashboard:ReadCache:Expiry must be between 1 s and 1 h, not {cache.Expiry}.");
        }

        if (options.Auth.SignInAttemptsPerMinute is < 1 or > 1000)
        {
            errors.Add($"Dashboard:Auth:SignInAttemptsPerMinute must be between 1 and 1000, not {options.Auth.SignInAttemptsPerMinute}.");
        }

        var mode = options.Auth.Mode;
        if (mode is not null && !string.Equals(mode, "Local", StringComparison.OrdinalIgnoreCase) && !string.Equals(mode, "Cookie", StringComparison.OrdinalIgnoreCase))
        {
            errors.Add($"Dashboard:Auth:Mode must be Cookie or Local, not '{mode}'.");
        }

        if (string.Equals(mode, "Local", StringComparison.OrdinalIgnoreCase) && !environment.IsDevelopment() && !options.Auth.AllowLocalOnLoopback)
        {
            errors.Add("Dashboard:Auth:Mode=Local makes every request an admin; it is refused outside the Development environment. " +
                       "Use Cookie with users and API keys, or set Dashboard:Auth:AllowLocalOnLoopback=true for a one-person host " +
                       "(then only loopback requests are signed in).");
        }

        foreach (var (user, u) in options.Auth.Users)
        {
            if (!PasswordHasher.IsWellFormed(u.PasswordHash))
            {
                errors.Add($"Dashboard:Auth:Users:{user}:PasswordHash is not a pbkdf2-sha256 hash (make one with 'dotnet run --project src/Dashboard.Host -- hash-password').");
            }

            if (!Roles.All.Contains(u.Role))
            {
                errors.Add($"Dashboard:Auth:Users:{user}:Role must be one of {string.Join(", ", Roles.All)}.");
            }
        }

        foreach (var (key, secret) in options.Auth.ApiKeys)
        {
            if (secret.Length < 16)
            {
                errors.Add($"Dashboard:Auth:ApiKeys:{key} must be at least 16 characters.");
            }
        }

        foreach (var (key, role) in options.Auth.ApiKeyRoles)
        {
            if (!Roles.All.Contains(role))
            {
                errors.Add($"Dashboard:Auth:ApiKeyRoles:{key} must be one of {string.Join(", ", Roles.All)}.");
            }
        }

        return errors.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(errors);
    }
}
