using Npgsql;

namespace PumpFleet.EventStore.Audit;

/// <summary>
/// Failed sign-ins per user name in PostgreSQL (<c>pf_sign_in_failures</c>, Sql/008), so a lockout holds on every
/// dashboard replica. The caller's clock decides (times are parameters), so every replica applies the same window
/// to the same rows and tests can move time.
/// </summary>
public sealed class SignInFailureStore(NpgsqlDataSource dataSource)
{
    /// <summary>True when <paramref name="user"/> has at least <paramref name="maxFailures"/> failures, the last one less than <paramref name="window"/> before <paramref name="now"/>.</summary>
    public async Task<bool> IsLockedOutAsync(string user, int maxFailures, TimeSpan window, DateTimeOffset now, CancellationToken ct = default)
    {
        await using var cmd = dataSource.CreateCommand(
            "SELECT EXISTS (SELECT 1 FROM pf_sign_in_failures WHERE user_name = $1 AND failures >= $2 AND last_at > $3)");
        cmd.Parameters.Add(new() { Value = user });
        cmd.Parameters.Add(new() { Value = maxFailures });
        cmd.Parameters.Add(new() { Value = now - window });
        return (bool)(await cmd.ExecuteScalarAsync(ct))!;
    }

    /// <summary>
    /// Counts one failure: a name whose last failure is older than <paramref name="window"/> starts again at one. In the
    /// same statement, rows of other names past the window are removed, so probing many names does not grow the table.
    /// </summary>
    public async Task FailedAsync(string user, TimeSpan window, DateTimeOffset now, CancellationToken ct = default)
    {
        // One statement: two replicas counting the same name at once both land (the upsert serialises on the row).
        await using var cmd = dataSource.CreateCommand("""
            WITH pruned AS (DELETE FROM pf_sign_in_failures WHERE last_at <= $3 AND user_name <> $1)
            INSERT INTO pf_sign_in_failures AS f (user_name, failures, last_at) VALUES ($1, 1, $2)
            ON CONFLICT (user_name) DO UPDATE
               SET failures = CASE WHEN f.last_at <= $3 THEN 1 ELSE f.failures + 1 END,
                   last_at = GREATEST(f.last_at, EXCLUDED.last_at)
            """);
        cmd.Parameters.Add(new() { Value = user });
        cmd.Parameters.Add(new() { Value = now });
        cmd.Parameters.Add(new() { Value = now - window });
        await cmd.ExecuteNonQueryAsync(ct);
    }

    /// <summary>Forgets the failures of <paramref name="user"/> (a successful sign-in).</summary>
    public async Task SucceededAsync(string user, CancellationToken ct = default)
    {
        await using var cmd = dataSource.CreateCommand("DELETE FROM pf_sign_in_failures WHERE user_name = $1");
        cmd.Parameters.Add(new() { Value = user });
        await cmd.ExecuteNonQueryAsync(ct);
    }
}
