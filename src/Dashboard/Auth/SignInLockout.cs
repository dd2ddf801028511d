using PumpFleet.EventStore.Audit;

namespace PumpFleet.Dashboard.Auth;

/// <summary>
/// Locks a user name out after <see cref="MaxFailures"/> failed sign-ins within <see cref="Window"/>, for
/// <see cref="Window"/>, even with the right password afterwards: guessing a password then costs hours, not
/// seconds. The failures are kept in PostgreSQL (<see cref="SignInFailureStore"/>), so the lockout holds on every
/// dashboard replica: spreading guesses over replicas (a load balancer does that by itself) gains nothing. When the
/// database cannot answer, the sign-in fails (500): no sign-in without the lockout check.
/// </summary>
internal sealed class SignInLockout(SignInFailureStore store, TimeProvider time)
{
    public const int MaxFailures = 5;
    public static readonly TimeSpan Window = TimeSpan.FromMinutes(15);

    public Task<bool> IsLockedOutAsync(string user, CancellationToken ct) =>
        store.IsLockedOutAsync(user, MaxFailures, Window, time.GetUtcNow(), ct);

    // Unknown names also count, so probing names is throttled too; the store prunes rows past the window.
    public Task FailedAsync(string user, CancellationToken ct) => store.FailedAsync(user, Window, time.GetUtcNow(), ct);

    public Task SucceededAsync(string user, CancellationToken ct) => store.SucceededAsync(user, ct);
}
