using Npgsql;

namespace PumpFleet.TestSupport;

/// <summary>What one PostgreSQL session holds that would outlive its borrower on a pool without Npgsql's reset.</summary>
public sealed record PooledSession(int Pid, string[] Channels, long AdvisoryLocks, long TemporaryTables, bool InWritingTransaction);

/// <summary>
/// Borrows every connection of a pool at once (so the one an earlier piece of work used is among them) and asks
/// PostgreSQL what each session holds: the channels it listens to, its advisory locks, its temporary tables, and
/// whether it is still inside a transaction that wrote (this read-only statement takes no transaction id of its own). The
/// platform's pool hands connections on without a session reset (EventStoreDataSource.Build), so each must be empty.
/// </summary>
public static class PooledSessions
{
    /// <summary>Every one of the <paramref name="poolSize"/> sessions of <paramref name="dataSource"/> (its Maximum Pool Size).</summary>
    public static async Task<List<PooledSession>> EveryAsync(NpgsqlDataSource dataSource, int poolSize, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(dataSource);
        var conns = new List<NpgsqlConnection>();
        try
        {
            for (var i = 0; i < poolSize; i++)
            {
                conns.Add(await dataSource.OpenConnectionAsync(ct));
            }

            var sessions = new List<PooledSession>();
            foreach (var conn in conns)
            {
                await using var cmd = new NpgsqlCommand("""
                    SELECT pg_backend_pid(),
                           (SELECT coalesce(array_agg(c ORDER BY c), '{}') FROM pg_listening_channels() AS c),
                           (SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid()),
                           (SELECT count(*) FROM pg_class WHERE relnamespace = pg_my_temp_schema()),
                           pg_current_xact_id_if_assigned() IS NOT NULL
                    """, conn);
                await using var r = await cmd.ExecuteReaderAsync(ct);
                await r.ReadAsync(ct);
                sessions.Add(new(r.GetInt32(0), await r.GetFieldValueAsync<string[]>(1, ct), r.GetInt64(2), r.GetInt64(3), r.GetBoolean(4)));
            }

            if (sessions.Select(s => s.Pid).Distinct().Count() != poolSize)
            {
                throw new InvalidOperationException($"Expected {poolSize} distinct sessions; is the pool's Maximum Pool Size {poolSize}?");
            }

            return sessions;
        }
        finally
        {
            foreach (var conn in conns)
            {
                await conn.DisposeAsync();
            }
        }
    }

    /// <summary>
    /// The backend of <paramref name="connectionString"/>'s database that is idle after <paramref name="query"/> (e.g.
    /// a LISTEN waiting for notifications), other than <paramref name="notThis"/>; waits up to 30 s for one.
    /// </summary>
    public static async Task<int> IdleAfterAsync(string connectionString, string query, int? notThis, CancellationToken ct)
    {
        var own = new NpgsqlConnectionStringBuilder(connectionString) { Pooling = false }.ConnectionString;
        var pid = 0;
        await Eventually.TrueAsync(async () =>
        {
            await using var conn = new NpgsqlConnection(own);
            await conn.OpenAsync(ct);
            await using var cmd = new NpgsqlCommand("""
                SELECT pid FROM pg_stat_activity
                WHERE datname = current_database() AND query = $1 AND state = 'idle' AND pid <> coalesce($2, 0)
                """, conn);
            cmd.Parameters.Add(new() { Value = query });
            cmd.Parameters.Add(new() { Value = (object?)notThis ?? DBNull.Value, NpgsqlDbType = NpgsqlTypes.NpgsqlDbType.Integer });
            pid = (int?)await cmd.ExecuteScalarAsync(ct) ?? 0;
            return pid != 0;
        }, TimeSpan.FromSeconds(30), $"a session idle after '{query}'");
        return pid;
    }

    /// <summary>Ends backend <paramref name="pid"/> (pg_terminate_backend), as a lost connection would.</summary>
    public static async Task TerminateAsync(string connectionString, int pid, CancellationToken ct)
    {
        await using var conn = new NpgsqlConnection(new NpgsqlConnectionStringBuilder(connectionString) { Pooling = false }.ConnectionString);
        await conn.OpenAsync(ct);
        await using var cmd = new NpgsqlCommand("SELECT pg_terminate_backend($1)", conn);
        cmd.Parameters.Add(new() { Value = pid });
        if (!(bool)(await cmd.ExecuteScalarAsync(ct))!)
        {
            throw new InvalidOperationException($"Backend {pid} was not terminated.");
        }
    }
}
