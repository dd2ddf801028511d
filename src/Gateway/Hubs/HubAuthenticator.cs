using System.Security.Cryptography;
using System.Text;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using PumpFleet.Contracts.Hub;
using PumpFleet.Gateway.Hosting;
using PumpFleet.Gateway.Protocol;

namespace PumpFleet.Gateway.Hubs;

/// <summary>Result of checking a hub's MQTT credentials.</summary>
public enum HubAuthResult
{
    /// <summary>Known hub, right secret (or a dev fleet hub, now provisioned).</summary>
    Accepted,
    /// <summary>Unknown hub, revoked hub, wrong secret or malformed id.</summary>
    Denied,
    /// <summary>Every hashing slot stayed busy for <c>HashWait</c>: try again later.</summary>
    Busy,
    /// <summary>
    /// The password is not one this instance verified before and the verification budget is exhausted (a flood of
    /// failed logins): refused before any database read or PBKDF2; try again later.
    /// </summary>
    OverBudget,
}

/// <summary>A check's result and, when accepted, the stored secret hash the password matched.</summary>
public sealed record HubAuthOutcome(HubAuthResult Result, string? SecretHash);

/// <summary>
/// Checks hub credentials against the hashed secrets in PostgreSQL (and the dev fleet secret when enabled).
/// A password this instance verified before (<see cref="VerifiedCredentials"/>) is proven with one HMAC and the
/// registry read; any other attempt must first get a token of the <see cref="VerificationBudget"/>, so a flood of
/// wrong passwords is refused before it costs a database read or PBKDF2, while hubs that proved themselves get in.
/// </summary>
public sealed partial class HubAuthenticator : IHubRegistryListener
{
    private readonly HubStore _store;
    private readonly IOptions<HubAuthOptions> _options;
    private readonly ILogger<HubAuthenticator> _logger;
    private readonly VerifiedCredentials _verified;
    private readonly VerificationBudget _budget;
    private readonly SemaphoreSlim _hashing;
    private long _failedChecks;

    /// <summary>Creates the authenticator with the configured cache, budget and hashing pool.</summary>
    public HubAuthenticator(HubStore store, IOptions<HubAuthOptions> options, TimeProvider time, ILogger<HubAuthenticator> logger)
    {
        ArgumentNullException.ThrowIfNull(options);
        _store = store;
        _options = options;
        _logger = logger;
        var o = options.Value;
        _verified = new VerifiedCredentials(time, o.VerifiedCacheTtl);
        _budget = new VerificationBudget(time, o.VerificationBudgetPerSecond, o.VerificationBudgetBurst);
        _hashing = new SemaphoreSlim(o.HashConcurrency, o.HashConcurrency);
    }

    /// <summary>The budget of unproven checks (exposed for metrics and tests).</summary>
    public VerificationBudget Budget => _budget;

    /// <summary>
    /// Unproven checks that failed since this instance started: tells a wrong-password flood (many) from many honest
    /// hubs connecting at once (none) when the budget runs out.
    /// </summary>
    public long FailedChecks => Interlocked.Read(ref _failedChecks);

    /// <summary>
    /// True when this instance verified <paramref name="password"/> for <paramref name="hubId"/> before: the attempt
    /// is proven and skips the failed-login backoffs (the registry row is still checked by <see cref="VerifyAsync"/>).
    /// </summary>
    public bool IsProven(string hubId, string? password) => _verified.Recall(hubId, password) is not null;

    /// <summary>Checks <paramref name="password"/> for <paramref name="hubId"/>. Throws when PostgreSQL is unreachable.</summary>
    public async Task<HubAuthResult> AuthenticateAsync(string hubId, string? password, CancellationToken ct) =>
        (await VerifyAsync(hubId, password, ct)).Result;

    /// <summary>
    /// As <see cref="AuthenticateAsync"/>, with the stored hash the password was verified against: the embedded
    /// broker keeps it with the session, so a rotation ends exactly the sessions that used the old secret.
    /// </summary>
    public async Task<HubAuthOutcome> VerifyAsync(string hubId, string? password, CancellationToken ct)
    {
        if (!HubTopics.IsValidId(hubId) || string.IsNullOrEmpty(password))
        {
            return new(HubAuthResult.Denied, null);
        }

        var remembered = _verified.Recall(hubId, password);
        if (remembered is not null)
        {
            // Proven before: only the registry row decides (revoked or rotated since means it is no longer valid).
            var row = await _store.FindAsync(hubId, ct);
            if (row is { RevokedAt: null } && row.SecretHash == remembered)
            {
                return new(HubAuthResult.Accepted, remembered);
            }

            _verified.Forget(hubId);
        }

        if (!_budget.TryTake())
        {
            return new(HubAuthResult.OverBudget, null);
        }

        var failed = false;
        try
        {
            var outcome = await VerifyUnprovenAsync(hubId, password, ct);
            failed = outcome.Result == HubAuthResult.Denied;
            return outcome;
        }
        finally
        {
            // Only a failed check spends the budget; a success, a busy pool or a database error gives the token back.
            if (!failed)
            {
                _budget.Return();
            }
            else
            {
                Interlocked.Increment(ref _failedChecks);
            }
        }
    }

    private async Task<HubAuthOutcome> VerifyUnprovenAsync(string hubId, string password, CancellationToken ct)
    {
        var o = _options.Value;
        var hub = await _store.FindAsync(hubId, ct);
        if (hub is null)
        {
            if (!string.IsNullOrEmpty(o.DevFleetSecret) && FixedTimeEquals(password, SecretHasher.DevFleetPassword(o.DevFleetSecret, hubId)))
            {
                var credential = HubCredential.From(password, o);
                // A concurrent first connect of the same hub may have created the row: the session keeps whichever
                // hash is stored (both were made from this same password).
                var stored = await _store.TryCreateAsync(hubId, credential, "dev-fleet", ct)
                    ? credential.SecretHash
                    : (await _store.FindAsync(hubId, ct))?.SecretHash;
                LogDevFleetProvisioned(hubId);
                if (stored is not null)
                {
                    _verified.Remember(hubId, password, stored);
                }

                return new(HubAuthResult.Accepted, stored);
            }

            return new(HubAuthResult.Denied, null);
        }

        if (hub.RevokedAt is not null)
        {
            return new(HubAuthResult.Denied, null);
        }

        // PBKDF2 runs in a bounded pool: the checks the budget lets through queue here instead of taking every core.
        if (!await _hashing.WaitAsync(o.HashWait, ct))
        {
            return new(HubAuthResult.Busy, null);
        }

        bool ok;
        try
        {
            ok = SecretHasher.Verify(password, hub.SecretHash);
        }
        finally
        {
            _hashing.Release();
        }

        if (!ok)
        {
            return new(HubAuthResult.Denied, null);
        }

        _verified.Remember(hubId, password, hub.SecretHash);
        return new(HubAuthResult.Accepted, hub.SecretHash);
    }

    /// <summary>
    /// A hub's credential changed (rotated, revoked): forget what was verified for it. The registry read on every
    /// connect already refuses a stale credential; this also drops the fast path at once.
    /// </summary>
    public Task OnHubsChangedAsync(IReadOnlyCollection<string>? hubIds, CancellationToken ct)
    {
        foreach (var id in hubIds ?? [])
        {
            _verified.Forget(id);
        }

        return Task.CompletedTask;
    }

    private static bool FixedTimeEquals(string a, string b) =>
        CryptographicOperations.FixedTimeEquals(Encoding.UTF8.GetBytes(a), Encoding.UTF8.GetBytes(b));

    [LoggerMessage(Level = LogLevel.Information, Message = "Hub {HubId} authenticated with the dev fleet secret and was provisioned")]
    private partial void LogDevFleetProvisioned(string hubId);
}
