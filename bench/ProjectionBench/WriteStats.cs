using System.Globalization;
using Npgsql;

namespace PumpFleet.ProjectionBench;

/// <summary>
/// What one catch-up cost PostgreSQL (issue 14, the pumps read model): WAL bytes, rows inserted and updated per table
/// with the share of HOT updates (an update that writes no index entry), and, when the server preloads
/// <c>pg_stat_statements</c> (<c>--statement-stats</c>), execution time per statement, each per event of the log.
/// </summary>
internal sealed class WriteStats
{
    private static readonly string[] Tables = ["pf_pump_status", "pf_pump_fold", "pf_daily_flow", "pf_alarm_log"];

    private readonly Dictionary<string, (long Ins, long Upd, long Hot, long SeqScans, long SeqRows)> _tables;
    private readonly long _wal;
    private readonly (long Records, long Fpi) _walStats;

    private WriteStats(Dictionary<string, (long Ins, long Upd, long Hot, long SeqScans, long SeqRows)> tables, long wal, (long Records, long Fpi) walStats)
    {
        _tables = tables;
        _wal = wal;
        _walStats = walStats;
    }

    /// <summary>Takes the counters before a run (and empties pg_stat_statements when <paramref name="statements"/>).</summary>
    public static async Task<WriteStats> StartAsync(NpgsqlDataSource ds, bool statements)
    {
        if (statements)
        {
            await using var reset = ds.CreateCommand("CREATE EXTENSION IF NOT EXISTS pg_stat_statements; SELECT pg_stat_statements_reset();");
            await reset.ExecuteNonQueryAsync();
        }

        var (tables, wal, walStats) = await ReadAsync(ds);
        return new WriteStats(tables, wal, walStats);
    }

    /// <summary>Prints what the run wrote since <see cref="StartAsync"/>, per event of the log.</summary>
    public async Task PrintAsync(NpgsqlDataSource ds, string label, long events, bool statements)
    {
        // Table counters reach the shared statistics when a backend goes idle (at most ~1 s late) or exits: end the
        // pool's backends, then read until two readings agree.
        NpgsqlConnection.ClearAllPools();
        var (tables, wal, walStats) = await ReadAsync(ds);
        for (var i = 0; i < 20; i++)
        {
            await Task.Delay(250);
            var again = await ReadAsync(ds);
            if (again.Tables.All(kv => tables.TryGetValue(kv.Key, out var v) && v == kv.Value))
            {
                break;
            }

            tables = again.Tables;
            walStats = again.WalStats;
        }

        var line = new List<string>();
        foreach (var t in Tables)
        {
            var now = tables.GetValueOrDefault(t);
            var then = _tables.GetValueOrDefault(t);
            var upd = now.Upd - then.Upd;
            var hot = now.Hot - then.Hot;
            // Sequential scans and the rows they read (issue 14, h14x): a page's statement joined on the table's key but
            // planned as a scan reads the whole table once per page.
            line.Add(string.Create(CultureInfo.InvariantCulture,
                $"{t} ins {(now.Ins - then.Ins) / (double)events:F3}/ev upd {upd / (double)events:F3}/ev HOT {(upd == 0 ? 0 : hot / (double)upd):P0} seq scans {now.SeqScans - then.SeqScans} ({(now.SeqRows - then.SeqRows) / (double)events:F2} rows/ev)"));
        }

        // WAL records and full-page images per event (pg_stat_wal; issue 14, h14x): what the bytes are made of.
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"  [{label}] WAL {(wal - _wal) / (double)events:F0} B/event, {(walStats.Records - _walStats.Records) / (double)events:F3} records/event, {(walStats.Fpi - _walStats.Fpi) / (double)events:F4} full-page images/event; {string.Join("; ", line)}"));
        if (!statements)
        {
            return;
        }

        await using var cmd = ds.CreateCommand("""
            SELECT s.calls, s.rows, s.total_exec_time, left(regexp_replace(s.query, '\s+', ' ', 'g'), 90), s.total_plan_time
            FROM pg_stat_statements s JOIN pg_database d ON d.oid = s.dbid
            WHERE d.datname = current_database() AND s.toplevel ORDER BY s.total_exec_time + s.total_plan_time DESC LIMIT 14
            """);
        await using var r = await cmd.ExecuteReaderAsync();
        while (await r.ReadAsync())
        {
            var calls = r.GetInt64(0);
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"    {r.GetDouble(2) * 1000 / events,7:F2} µs/event (plan {r.GetDouble(4) * 1000 / events,5:F2})  {calls,7} calls  {r.GetInt64(1) / (double)Math.Max(1, calls),8:F1} rows/call  {r.GetDouble(2) / Math.Max(1, calls),8:F3} ms/call  {r.GetString(3)}"));
        }
    }

    private static async Task<(Dictionary<string, (long Ins, long Upd, long Hot, long SeqScans, long SeqRows)> Tables, long Wal, (long Records, long Fpi) WalStats)> ReadAsync(NpgsqlDataSource ds)
    {
        await using var cmd = ds.CreateCommand("""
            SELECT pg_stat_clear_snapshot();
            SELECT relname, n_tup_ins, n_tup_upd, n_tup_hot_upd, pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0')::bigint, seq_scan, seq_tup_read
            FROM pg_stat_user_tables WHERE relname = ANY(@tables);
            SELECT wal_records, wal_fpi FROM pg_stat_wal;
            """);
        cmd.Parameters.AddWithValue("tables", Tables);
        await using var r = await cmd.ExecuteReaderAsync();
        await r.NextResultAsync();
        var tables = new Dictionary<string, (long Ins, long Upd, long Hot, long SeqScans, long SeqRows)>(StringComparer.Ordinal);
        long wal = 0;
        while (await r.ReadAsync())
        {
            tables[r.GetString(0)] = (r.GetInt64(1), r.GetInt64(2), r.GetInt64(3), r.GetInt64(5), r.GetInt64(6));
            wal = r.GetInt64(4);
        }

        await r.NextResultAsync();
        var walStats = await r.ReadAsync() ? (r.GetInt64(0), r.GetInt64(1)) : (0L, 0L);
        return (tables, wal, walStats);
    }
}
