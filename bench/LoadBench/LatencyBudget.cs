using System.Globalization;
using Npgsql;

/// <summary>
/// Where the time of one message goes: reads the platform's span file (PumpFleet:Tracing:SpanFile, one line per span)
/// for the spans of one phase and prints, per stage, its time per message at p50 and p99 and its mean share in the
/// slowest 1 % of messages (the p99 tail), which is what the latency budget in docs/benchmarks.md quotes.
/// </summary>
internal static class LatencyBudget
{
    private const string Root = "PumpFleet.Gateway/mqtt receive";
    private const string PubAck = "PumpFleet.Gateway/puback";

    public static void Print(string spanFile, long fromUnixMicros, long toUnixMicros, double[] clientLatenciesMs)
    {
        // trace id -> stage name -> summed duration (µs); a stage that runs several times in one message (Npgsql
        // commands, two appends) is summed, as its share of that message's time.
        var traces = new Dictionary<string, Dictionary<string, long>>(StringComparer.Ordinal);
        var rootStart = new Dictionary<string, long>(StringComparer.Ordinal);
        using (var reader = new StreamReader(new FileStream(spanFile, FileMode.Open, FileAccess.Read, FileShare.ReadWrite)))
        {
            while (reader.ReadLine() is { } line)
            {
                var f = line.Split('\t');
                if (f.Length < 6)
                {
                    continue; // a line being written
                }

                var start = long.Parse(f[4], CultureInfo.InvariantCulture);
                var duration = long.Parse(f[5], CultureInfo.InvariantCulture);
                if (!traces.TryGetValue(f[0], out var stages))
                {
                    traces[f[0]] = stages = new Dictionary<string, long>(StringComparer.Ordinal);
                }

                stages[f[3]] = stages.GetValueOrDefault(f[3]) + duration;
                if (f[3] == Root)
                {
                    rootStart[f[0]] = start;
                }
            }
        }

        var messages = traces.Where(t => rootStart.TryGetValue(t.Key, out var s) && s >= fromUnixMicros && s < toUnixMicros && t.Value.ContainsKey(Root))
            .Select(t => t.Value).ToList();
        if (messages.Count == 0)
        {
            Console.WriteLine($"No '{Root}' spans in {spanFile} for the phase: is PumpFleet:Tracing:SpanFile set?");
            return;
        }

        var ordered = messages.OrderBy(m => m[Root]).ToList();
        var p99Root = ordered[Math.Min(ordered.Count - 1, (int)(0.99 * ordered.Count))][Root];
        var tail = ordered.Where(m => m[Root] >= p99Root).ToList();
        var names = messages.SelectMany(m => m.Keys).Distinct().OrderBy(n => -messages.Average(m => m.GetValueOrDefault(n))).ToList();
        Console.WriteLine();
        Console.WriteLine($"Latency budget from {messages.Count:N0} traced messages (slowest 1 %: {tail.Count:N0}, server span ≥ {p99Root / 1000.0:F1} ms):");
        Console.WriteLine("| stage (span) | spans per message | p50 (ms) | p99 (ms) | mean in the p99 tail (ms) |");
        Console.WriteLine("|---|---:|---:|---:|---:|");
        var client50 = Q(clientLatenciesMs, 0.50);
        var client99 = Q(clientLatenciesMs, 0.99);
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"| hub publish → PUBACK (client) | – | {client50:F1} | {client99:F1} | – |"));
        foreach (var n in names)
        {
            var values = messages.Select(m => m.GetValueOrDefault(n) / 1000.0).Order().ToArray();
            var present = messages.Count(m => m.ContainsKey(n)) / (double)messages.Count;
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"| {n} | {present:F2} | {Q(values, 0.50):F2} | {Q(values, 0.99):F2} | {tail.Average(m => m.GetValueOrDefault(n)) / 1000.0:F2} |"));
        }

        var server = messages.Select(m => m[Root] / 1000.0).Order().ToArray();
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"| outside the server span (network, MQTTnet queues, PUBACK write and read) | – | {client50 - Q(server, 0.50):F1} | {client99 - Q(server, 0.99):F1} | – |"));
        // The puback span (end of the interceptor → MQTTnet hands the PUBACK to the connection) splits that remainder:
        // what is left after it is the socket write, the network and the client's own receive.
        var withPubAck = messages.Where(m => m.ContainsKey(PubAck)).Select(m => (m[Root] + m[PubAck]) / 1000.0).Order().ToArray();
        if (withPubAck.Length > 0)
        {
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"| outside the server span and the puback span (socket write, network, client) | – | {client50 - Q(withPubAck, 0.50):F1} | {client99 - Q(withPubAck, 0.99):F1} | – |"));
        }
    }

    private static double Q(double[] sorted, double q) => sorted.Length == 0 ? double.NaN : sorted[Math.Min(sorted.Length - 1, (int)(q * sorted.Length))];
}

/// <summary>PostgreSQL's own counters (commits, row writes) summed over the database, for per-message deltas.</summary>
internal sealed record PgCounters(long Commits, long Inserts, long Updates, long Deletes, long WalBytes)
{
    /// <summary>Transaction ids handed out server-wide (every transaction or subtransaction that wrote takes one; a read-only one none).</summary>
    public long Xids { get; init; }

    /// <summary>Updates of this database's tables that were HOT (no new index entries).</summary>
    public long HotUpdates { get; init; }

    /// <summary>WAL records and full-page images written server-wide (pg_stat_wal).</summary>
    public long WalRecords { get; init; }

    /// <inheritdoc cref="WalRecords"/>
    public long WalFullPages { get; init; }

    public static async Task<PgCounters> ReadAsync(string cs)
    {
        await using var ds = NpgsqlDataSource.Create(cs);
        // The statistics of this backend's transaction are not in the counters until it ends; a fresh snapshot is taken.
        // pg_current_snapshot's xmax is the next xid to be assigned, read without taking one (pg_current_xact_id would).
        await using var cmd = ds.CreateCommand("""
            SELECT pg_stat_clear_snapshot();
            SELECT d.xact_commit,
                   (SELECT coalesce(sum(n_tup_ins), 0) FROM pg_stat_user_tables)::bigint,
                   (SELECT coalesce(sum(n_tup_upd), 0) FROM pg_stat_user_tables)::bigint,
                   (SELECT coalesce(sum(n_tup_del), 0) FROM pg_stat_user_tables)::bigint,
                   pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0')::bigint,
                   pg_snapshot_xmax(pg_current_snapshot())::text::bigint,
                   (SELECT coalesce(sum(n_tup_hot_upd), 0) FROM pg_stat_user_tables)::bigint,
                   w.wal_records, w.wal_fpi
            FROM pg_stat_database d, pg_stat_wal w WHERE d.datname = current_database()
            """);
        await using var r = await cmd.ExecuteReaderAsync();
        await r.NextResultAsync();
        await r.ReadAsync();
        return new PgCounters(r.GetInt64(0), r.GetInt64(1), r.GetInt64(2), r.GetInt64(3), r.GetInt64(4))
        {
            Xids = r.GetInt64(5),
            HotUpdates = r.GetInt64(6),
            WalRecords = r.GetInt64(7),
            WalFullPages = r.GetInt64(8),
        };
    }

    public static async Task<List<(string Table, long Inserts, long Updates, long HotUpdates)>> TablesAsync(string cs)
    {
        await using var ds = NpgsqlDataSource.Create(cs);
        await using var cmd = ds.CreateCommand("SELECT pg_stat_clear_snapshot(); SELECT relname, n_tup_ins, n_tup_upd, n_tup_hot_upd FROM pg_stat_user_tables");
        await using var r = await cmd.ExecuteReaderAsync();
        await r.NextResultAsync();
        var list = new List<(string, long, long, long)>();
        while (await r.ReadAsync())
        {
            list.Add((r.GetString(0), r.GetInt64(1), r.GetInt64(2), r.GetInt64(3)));
        }

        return list;
    }
}

/// <summary>
/// Where PostgreSQL's time per appended event goes (issue 15): <c>pg_stat_statements</c> (nested statements counted
/// too, so a statement inside a function or trigger shows apart from its caller, whose time includes it) and
/// <c>pg_stat_user_functions</c> (calls and own time of each function, the triggers' included), over one phase. Needs a
/// server started with <c>statementStatistics</c> (LoadBench <c>--statement-stats</c>).
/// </summary>
internal sealed record PgStatements(Dictionary<string, (long Calls, double TotalMs, double SelfMs)> Functions)
{
    /// <summary>Empties pg_stat_statements (the whole server) and takes the functions' counters of the database.</summary>
    public static async Task<PgStatements> StartAsync(string adminCs, string cs)
    {
        await using (var admin = NpgsqlDataSource.Create(adminCs))
        {
            await using var reset = admin.CreateCommand("CREATE EXTENSION IF NOT EXISTS pg_stat_statements; SELECT pg_stat_statements_reset();");
            await reset.ExecuteNonQueryAsync();
        }

        return await ReadFunctionsAsync(cs);
    }

    public static async Task<PgStatements> ReadFunctionsAsync(string cs)
    {
        await using var ds = NpgsqlDataSource.Create(cs);
        await using var cmd = ds.CreateCommand("SELECT pg_stat_clear_snapshot(); SELECT funcname, calls, total_time, self_time FROM pg_stat_user_functions");
        await using var r = await cmd.ExecuteReaderAsync();
        await r.NextResultAsync();
        var functions = new Dictionary<string, (long, double, double)>(StringComparer.Ordinal);
        while (await r.ReadAsync())
        {
            functions[r.GetString(0)] = (r.GetInt64(1), r.GetDouble(2), r.GetDouble(3));
        }

        return new PgStatements(functions);
    }

    /// <summary>Prints the statements of <paramref name="database"/> and its functions since <paramref name="start"/>, per message and per event.</summary>
    /// <summary>
    /// Statements listed, most execution time first (LoadBench <c>--statement-rows N</c>, default 16; h15w's count of
    /// the readers' statements per source needs them all, e.g. 80).
    /// </summary>
    public static int Rows { get; set; } = 16;

    public static async Task PrintAsync(string adminCs, string cs, string database, PgStatements start, long messages, long events, string label)
    {
        Console.WriteLine();
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"PostgreSQL statements, {label} ({messages:N0} messages, {events:N0} events; execution time, not commits' WAL flushes; a nested statement's time is in its caller's too):"));
        // Buffers (shared blocks hit + read) per call: the statement's work, which a loaded machine does not inflate the
        // way it inflates the wall-clock execution time (a page read on the wrong index touched 16x the blocks).
        Console.WriteLine("| statement (first 100 characters) | top level | calls / message | rows / call | ms / call | µs / event | buffers / call | plans / call | planning µs / event |");
        Console.WriteLine("|---|---|---:|---:|---:|---:|---:|---:|---:|");
        await using (var admin = NpgsqlDataSource.Create(adminCs))
        {
            await using var cmd = admin.CreateCommand("""
                SELECT s.toplevel, s.calls, s.rows, s.total_exec_time, left(regexp_replace(s.query, '\s+', ' ', 'g'), 100), s.plans, s.total_plan_time,
                       s.shared_blks_hit + s.shared_blks_read
                FROM pg_stat_statements s JOIN pg_database d ON d.oid = s.dbid
                WHERE d.datname = $1 ORDER BY s.total_exec_time DESC LIMIT $2
                """);
            cmd.Parameters.Add(new() { Value = database });
            cmd.Parameters.Add(new() { Value = (long)Rows });
            await using var r = await cmd.ExecuteReaderAsync();
            while (await r.ReadAsync())
            {
                var calls = r.GetInt64(1);
                var query = r.GetString(4).Replace("|", "\\|", StringComparison.Ordinal);
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"| `{query}` | {(r.GetBoolean(0) ? "yes" : "no")} | {calls / (double)messages:F2} | {r.GetInt64(2) / (double)Math.Max(1, calls):F1} | {r.GetDouble(3) / Math.Max(1, calls):F3} | {r.GetDouble(3) * 1000 / events:F1} | {r.GetInt64(7) / (double)Math.Max(1, calls):F1} | {r.GetInt64(5) / (double)Math.Max(1, calls):F2} | {r.GetDouble(6) * 1000 / events:F1} |"));
            }
        }

        var end = await ReadFunctionsAsync(cs);
        Console.WriteLine();
        Console.WriteLine("| function (triggers included) | calls / message | own time µs / event | total time µs / event |");
        Console.WriteLine("|---|---:|---:|---:|");
        foreach (var (name, (calls, total, self)) in end.Functions
                     .Select(kv => (kv.Key, Delta: start.Functions.TryGetValue(kv.Key, out var s) ? (kv.Value.Calls - s.Calls, kv.Value.TotalMs - s.TotalMs, kv.Value.SelfMs - s.SelfMs) : kv.Value))
                     .Where(x => x.Delta.Item1 > 0).OrderByDescending(x => x.Delta.Item3).Take(12))
        {
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"| {name} | {calls / (double)messages:F2} | {self * 1000 / events:F1} | {total * 1000 / events:F1} |"));
        }
    }
}
