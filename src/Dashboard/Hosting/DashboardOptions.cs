namespace PumpFleet.Dashboard.Hosting;

/// <summary>Options of the dashboard and API (section <c>Dashboard</c>).</summary>
public sealed class DashboardOptions
{
    /// <summary>Configuration section.</summary>
    public const string SectionName = "Dashboard";

    /// <summary>Sign-in settings.</summary>
    public AuthOptions Auth { get; set; } = new();

    /// <summary>Largest page of <c>GET /api/pumps</c>. Default: 500.</summary>
    public int MaxPageSize { get; set; } = 500;

    /// <summary>How often the live channel (<c>/api/live</c>) looks for read-model changes. Default: 2 s.</summary>
    public TimeSpan LiveInterval { get; set; } = TimeSpan.FromSeconds(2);

    /// <summary>
    /// Add a <c>trace</c> to each <c>anomaly</c> message of <c>/api/live</c>: when the log queue's read that returned the
    /// event started and returned, when the live feed received it and when this browser's stream took it for writing
    /// (Unix ms). For the commit → browser breakdown of bench/LiveBench; costs one copy of the message per browser.
    /// Default: false.
    /// </summary>
    public bool LiveTimings { get; set; }

    /// <summary>Cohort signals need at least this many events in the cohort. Default: 3 (the N ≥ 3 of disproportionality rules).</summary>
    public int SignalMinimumCount { get; set; } = 3;

    /// <summary>
    /// False-discovery rate of the cohort screen of <c>GET /api/cohorts</c>: every cohort × measure test is adjusted
    /// by Benjamini–Hochberg and signals when its adjusted value is below this. Above 0, at most 0.2 (beyond that a
    /// screen flags more chance than signal). Default: 0.05, as the fleet job's <c>PumpFleet:Detection:CohortAlpha</c>.
    /// </summary>
    public double SignalFalseDiscoveryRate { get; set; } = 0.05;

    /// <summary>Route of the Orleans dashboard (trailing slash added). Empty: not mapped. Default: <c>/orleans</c>.</summary>
    public string OrleansDashboardPath { get; set; } = "/orleans";

    /// <summary>The shared read cache of the API's list reads (section <c>Dashboard:ReadCache</c>).</summary>
    public ReadCacheOptions ReadCache { get; set; } = new();
}

/// <summary>
/// The shared read cache (<see cref="Caching.SharedReadCache"/>): the answers of the list and summary reads the live
/// pages make, shared by every browser and recomputed once per read-model version.
/// </summary>
public sealed class ReadCacheOptions
{
    /// <summary>False: every request queries the database (the behaviour before the cache; for comparison). Default: true.</summary>
    public bool Enabled { get; set; } = true;

    /// <summary>
    /// How old a reading of the read-model version an API read may use (the live channel always reads it afresh before
    /// it pushes, so a page re-reading on a push is never answered from before it). The staleness this adds to a read
    /// that no push prompted, and what bounds the version reads to one per this span. Default: 500 ms; 0 to 10 s.
    /// </summary>
    public TimeSpan VersionMaxAge { get; set; } = TimeSpan.FromMilliseconds(500);

    /// <summary>Answers held at most (for one version); beyond it reads go to the database. Default: 2,000; 10 to 1,000,000.</summary>
    public int MaxEntries { get; set; } = 2000;

    /// <summary>Answers of an unchanged version are dropped after this, so an idle process holds nothing for long. Default: 5 min; 1 s to 1 h.</summary>
    public TimeSpan Expiry { get; set; } = TimeSpan.FromMinutes(5);
}

/// <summary>Sign-in settings (section <c>Dashboard:Auth</c>).</summary>
public sealed class AuthOptions
{
    /// <summary>
    /// <c>Cookie</c>: sign-in required (users for the UI, API keys or bearer tokens for the API). <c>Local</c>:
    /// everyone is the local admin, in the Development environment only (see <see cref="AllowLocalOnLoopback"/>).
    /// Default: <c>Local</c> in the Development environment, <c>Cookie</c> otherwise.
    /// </summary>
    public string? Mode { get; set; }

    /// <summary>
    /// Explicit opt-in to <c>Local</c> outside Development, for a one-person all-in-one: then only requests from the
    /// loopback address are the local admin, any other is anonymous. Default: false (Local refused at start).
    /// </summary>
    public bool AllowLocalOnLoopback { get; set; }

    /// <summary>
    /// Let the cookies travel over plain HTTP outside Development (they are <c>Secure</c> otherwise). Only for a
    /// test host on loopback without TLS. Default: false.
    /// </summary>
    public bool AllowHttpCookies { get; set; }

    /// <summary>Sign-in attempts per client address per minute (then 429). Default: 10.</summary>
    public int SignInAttemptsPerMinute { get; set; } = 10;

    /// <summary>UI users by name: password hash (from <c>dotnet run --project src/Dashboard.Host -- hash-password</c>) and role. Default: none.</summary>
    public Dictionary<string, UserOptions> Users { get; set; } = new(StringComparer.Ordinal);

    /// <summary>API keys by client name (the secret key itself, as the Helm chart passes it). Default: none.</summary>
    public Dictionary<string, string> ApiKeys { get; set; } = new(StringComparer.Ordinal);

    /// <summary>Role per API key name (<c>viewer</c>, <c>analyst</c>, <c>admin</c>). Default: <c>viewer</c>.</summary>
    public Dictionary<string, string> ApiKeyRoles { get; set; } = new(StringComparer.Ordinal);
}

/// <summary>One UI user.</summary>
public sealed class UserOptions
{
    /// <summary>PBKDF2 hash, see <see cref="Auth.PasswordHasher"/>.</summary>
    public string PasswordHash { get; set; } = "";

    /// <summary><c>viewer</c>, <c>analyst</c> or <c>admin</c>. Default: <c>viewer</c>.</summary>
    public string Role { get; set; } = "viewer";
}
