using System.Globalization;
using Npgsql;

namespace PumpFleet.ProjectionBench;

/// <summary>
/// Where the <c>cohorts</c> read model's catch-up spends PostgreSQL's time (issue 14, h14c): over one catch-up,
/// <c>pg_stat_statements</c> for the statements on the cohort tables (calls and rows per page, time and WAL bytes per
/// event), the tables' inserted / updated / HOT-updated rows, the server's WAL bytes per event, and each index of the
/// written tables with its size. Needs a server started with <c>statementStatistics</c> (<c>--statement-stats</c>).
/// </summary>
internal sealed class CohortProfile
{
    private readonly Dictionary<string, (long Ins, long Upd, long Hot, long Del)> _tables;
    private readonly long _walLsnBytes;

    private CohortProfile(Dictionary<string, (long, long, long, long)> tables, long walLsnBytes)
    {
        _tables = tables;
        _walLsnBytes = walLsnBytes;
    }

    /// <summary>Empties pg_stat_statements and takes the tables' row counters and the WAL position.</summary>
    public static async Task<CohortProfile> StartAsync(NpgsqlDataSource ds)
    {
        await using (var reset = ds.CreateCommand("CREATE EXTENSION IF NOT EXISTS pg_stat_statements; SELECT pg_stat_statements_reset();"))
        {
            await reset.ExecuteNonQueryAsync();
        }

        return new CohortProfile(await TablesAsync(ds), await WalAsync(ds));
    }

    /// <summary>Prints what the catch-up since <see cref="StartAsync"/> cost, per page and per event.</summary>
    public async Task PrintAsync(NpgsqlDataSource ds, long events, long pages)
    {
        var wal = await WalAsync(ds) - _walLsnBytes;
        Console.WriteLine();
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"cohorts catch-up, 1 worker: {events:N0} events in {pages:N0} pages; server WAL {wal / (double)events:F1} bytes per event"));
        Console.WriteLine("| statement (first 110 characters) | calls / page | rows / call | ms / call | µs / event | WAL bytes / event |");
        Console.WriteLine("|---|---:|---:|---:|---:|---:|");
        await using (var cmd = ds.CreateCommand("""
            SELECT s.calls, s.rows, s.total_exec_time, s.wal_bytes, left(regexp_replace(s.query, '\s+', ' ', 'g'), 110)
              FROM pg_stat_statements s JOIN pg_database d ON d.oid = s.dbid
             WHERE d.datname = current_database() AND s.toplevel
             ORDER BY s.total_exec_time DESC LIMIT 14
            """))
        await using (var r = await cmd.ExecuteReaderAsync())
        {
            while (await r.ReadAsync())
            {
                var calls = r.GetInt64(0);
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"| `{r.GetString(4).Replace("|", "\\|", StringComparison.Ordinal)}` | {calls / (double)pages:F2} | {r.GetInt64(1) / (double)Math.Max(1, calls):F1} | {r.GetDouble(2) / Math.Max(1, calls):F3} | {r.GetDouble(2) * 1000 / events:F2} | {r.GetDecimal(3) / events:F1} |"));
            }
        }

        Console.WriteLine();
        Console.WriteLine("| table | rows inserted / event | updated / event | of which HOT | deleted / event |");
        Console.WriteLine("|---|---:|---:|---:|---:|");
        foreach (var (table, (ins, upd, hot, del)) in await TablesAsync(ds))
        {
            var (ins0, upd0, hot0, del0) = _tables.GetValueOrDefault(table);
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"| {table} | {(ins - ins0) / (double)events:F4} | {(upd - upd0) / (double)events:F4} | {(hot - hot0) / (double)Math.Max(1, upd - upd0):P0} | {(del - del0) / (double)events:F4} |"));
        }

        Console.WriteLine();
        await using (var cmd = ds.CreateCommand("""
            SELECT i.indexrelid::regclass::text, pg_relation_size(i.indexrelid), pg_get_indexdef(i.indexrelid)
              FROM pg_index i WHERE i.indrelid IN ('pf_cohort_members'::regclass, 'pf_cohort_stats'::regclass) ORDER BY 1
            """))
        await using (var r = await cmd.ExecuteReaderAsync())
        {
            while (await r.ReadAsync())
            {
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"index {r.GetString(0)}: {r.GetInt64(1):N0} bytes; {r.GetString(2)}"));
            }
        }
    }

    private static async Task<Dictionary<string, (long, long, long, long)>> TablesAsync(NpgsqlDataSource ds)
    {
        var result = new Dictionary<string, (long, long, long, long)>(StringComparer.Ordinal);
        await using var cmd = ds.CreateCommand("""
            SELECT pg_stat_clear_snapshot();
            SELECT relname::text, n_tup_ins, n_tup_upd, n_tup_hot_upd, n_tup_del FROM pg_stat_user_tables
             WHERE relname IN ('pf_cohort_members', 'pf_cohort_stats') ORDER BY relname
            """);
        await using var r = await cmd.ExecuteReaderAsync();
        await r.NextResultAsync();
        while (await r.ReadAsync())
        {
            result[r.GetString(0)] = (r.GetInt64(1), r.GetInt64(2), r.GetInt64(3), r.GetInt64(4));
        }

        return result;
    }

    private static async Task<long> WalAsync(NpgsqlDataSource ds)
    {
        await using var cmd = ds.CreateCommand("SELECT (pg_current_wal_lsn() - '0/0'::pg_lsn)::bigint");
        return (long)(await cmd.ExecuteScalarAsync())!;
    }
}
