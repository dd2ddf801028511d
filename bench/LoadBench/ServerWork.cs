using System.Globalization;
using System.Text.RegularExpressions;
using Npgsql;

/// <summary>
/// PostgreSQL's CPU over a phase by process kind (issue 15, h15y): the private server's children sampled from /proc
/// every 100 ms, each by its process title (a client backend names its database; autovacuum workers, the checkpointer,
/// the WAL writer and the background writer name their role). A process that exits between two samples keeps what was
/// sampled; what it used after its last sample is in the postmaster's reaped children's time, shown as "exited after
/// the last sample" together with the postmaster's own, so the kinds sum to the server's total.
/// </summary>
internal sealed partial class ServerCpuSampler : IAsyncDisposable
{
    private const double TicksPerSecond = 100; // USER_HZ on Linux

    private readonly int _postmaster;
    private readonly Dictionary<int, (string Kind, long Ticks)> _first = [];
    private readonly Dictionary<int, (string Kind, long Ticks)> _last = [];
    private readonly long _postmasterTicks0;
    private readonly Lock _gate = new();
    private readonly Timer _timer;
    private bool _stopped;

    private ServerCpuSampler(int postmaster)
    {
        _postmaster = postmaster;
        _postmasterTicks0 = PostmasterTicks();
        Sample(first: true);
        _timer = new Timer(_ => Tick(), null, 100, 100);
    }

    /// <summary>Starts sampling the children of the server whose data folder is <paramref name="dataDirectory"/>.</summary>
    public static ServerCpuSampler Start(string dataDirectory)
    {
        var pidFile = Path.Combine(dataDirectory, "postmaster.pid");
        var postmaster = int.Parse(File.ReadLines(pidFile).First(), CultureInfo.InvariantCulture);
        return new ServerCpuSampler(postmaster);
    }

    /// <summary>
    /// <c>perf record</c> of the server's live children (client backends included) for <paramref name="duration"/>
    /// (LoadBench <c>--perf-postgres FILE</c>): where PostgreSQL's CPU per message goes inside the statements.
    /// </summary>
    public static System.Diagnostics.Process? StartPerf(string dataDirectory, string file, TimeSpan duration)
    {
        if (file.Length == 0)
        {
            return null;
        }

        var sampler = Start(dataDirectory);
        var pids = string.Join(',', sampler.Children());
        _ = sampler.DisposeAsync();
        return System.Diagnostics.Process.Start(new System.Diagnostics.ProcessStartInfo("perf",
            ["record", "-F", "999", "-g", "-p", pids, "-o", file, "--", "sleep", ((int)duration.TotalSeconds).ToString(CultureInfo.InvariantCulture)])
        { RedirectStandardOutput = true, RedirectStandardError = true });
    }

    /// <summary>Stops sampling; CPU seconds by kind since the start (a last sample is taken first).</summary>
    public async Task<IReadOnlyList<(string Kind, double Seconds)>> StopAsync()
    {
        await _timer.DisposeAsync();
        lock (_gate)
        {
            _stopped = true;
        }

        Sample(first: false);
        var byKind = new Dictionary<string, long>(StringComparer.Ordinal);
        var live = Children().ToHashSet();
        long exitedSampled = 0;
        foreach (var (pid, (kind, ticks)) in _last)
        {
            byKind[kind] = byKind.GetValueOrDefault(kind) + ticks - (_first.TryGetValue(pid, out var f) ? f.Ticks : 0);
            if (!live.Contains(pid))
            {
                exitedSampled += ticks; // a reaped child's whole time went into the postmaster's children's time
            }
        }

        // The postmaster's own time and its reaped children's: the part of the exited ones' time not sampled.
        var postmaster = PostmasterTicks() - _postmasterTicks0 - exitedSampled;
        byKind["postmaster, and exited processes after their last sample"] = Math.Max(0, postmaster);
        return [.. byKind.OrderByDescending(kv => kv.Value).Select(kv => (kv.Key, kv.Value / TicksPerSecond))];
    }

    public ValueTask DisposeAsync() => _timer.DisposeAsync();

    /// <summary>Prints the kinds as µs per message and share of the total.</summary>
    public static void Print(IReadOnlyList<(string Kind, double Seconds)> kinds, long messages, double phaseSeconds, string label)
    {
        var total = kinds.Sum(k => k.Seconds);
        Console.WriteLine();
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"PostgreSQL CPU by process kind, {label} ({messages:N0} messages; total {total * 1e6 / Math.Max(1, messages):N0} µs per message, {total / phaseSeconds:P0} of one core):"));
        Console.WriteLine("| process kind | µs per message | share |");
        Console.WriteLine("|---|---:|---:|");
        foreach (var (kind, seconds) in kinds.Where(k => k.Seconds > 0))
        {
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"| {kind} | {seconds * 1e6 / Math.Max(1, messages):N0} | {seconds / Math.Max(1e-9, total):P1} |"));
        }
    }

    private void Tick()
    {
        lock (_gate)
        {
            if (!_stopped)
            {
                Sample(first: false);
            }
        }
    }

    private void Sample(bool first)
    {
        foreach (var pid in Children())
        {
            if (Ticks(pid) is not { } ticks)
            {
                continue;
            }

            if (!_last.TryGetValue(pid, out var known))
            {
                known = (Kind(pid), 0);
                if (first)
                {
                    _first[pid] = (known.Kind, ticks);
                }
            }

            _last[pid] = (known.Kind, ticks);
        }
    }

    private IEnumerable<int> Children()
    {
        // The kernel's list of the postmaster's children (CONFIG_PROC_CHILDREN); else every process whose parent it is.
        var list = $"/proc/{_postmaster}/task/{_postmaster}/children";
        if (File.Exists(list))
        {
            string text;
            try
            {
                text = File.ReadAllText(list);
            }
            catch (IOException)
            {
                yield break;
            }

            foreach (var p in text.Split(' ', StringSplitOptions.RemoveEmptyEntries))
            {
                yield return int.Parse(p, CultureInfo.InvariantCulture);
            }

            yield break;
        }

        foreach (var dir in Directory.EnumerateDirectories("/proc"))
        {
            if (int.TryParse(Path.GetFileName(dir), out var pid) && Stat(pid) is { } s && s[1] == _postmaster.ToString(CultureInfo.InvariantCulture))
            {
                yield return pid;
            }
        }
    }

    private long PostmasterTicks() => Stat(_postmaster) is { } f
        ? long.Parse(f[11], CultureInfo.InvariantCulture) + long.Parse(f[12], CultureInfo.InvariantCulture)
          + long.Parse(f[13], CultureInfo.InvariantCulture) + long.Parse(f[14], CultureInfo.InvariantCulture)
        : 0;

    private static long? Ticks(int pid) => Stat(pid) is { } f
        ? long.Parse(f[11], CultureInfo.InvariantCulture) + long.Parse(f[12], CultureInfo.InvariantCulture)
        : null;

    // The fields after the command name (in parentheses, may hold spaces): [0] state, [1] ppid, [11] utime, [12] stime,
    // [13] cutime, [14] cstime.
    private static string[]? Stat(int pid)
    {
        try
        {
            var text = File.ReadAllText($"/proc/{pid}/stat");
            return text[(text.LastIndexOf(')') + 2)..].Split(' ');
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return null;
        }
    }

    // "postgres: user database host(port) state" for a client backend; "postgres: autovacuum worker database",
    // "postgres: checkpointer", "postgres: walwriter", … for the others.
    private static string Kind(int pid)
    {
        string title;
        try
        {
            title = File.ReadAllText($"/proc/{pid}/cmdline").Replace('\0', ' ').Trim();
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return "unknown";
        }

        var rest = title.StartsWith("postgres: ", StringComparison.Ordinal) ? title["postgres: ".Length..] : title;
        if (rest.StartsWith("autovacuum worker", StringComparison.Ordinal))
        {
            return "autovacuum workers";
        }

        if (BackendTitle().Match(rest) is { Success: true } m)
        {
            return $"client backends, database {m.Groups[1].Value}";
        }

        return rest.Split(' ')[0] switch
        {
            "checkpointer" => "checkpointer",
            "walwriter" => "WAL writer",
            "background" => "background writer",
            "autovacuum" => "autovacuum launcher",
            _ => "other: " + rest,
        };
    }

    [GeneratedRegex(@"^\S+ (\S+) [0-9.:]+\(\d+\)")]
    private static partial Regex BackendTitle();
}

/// <summary>
/// The WAL written over a phase by relation and resource manager (issue 15, h15y), read back with pg_walinspect: records,
/// bytes and full-page images per message, so WAL volume is placed on the tables and indexes that write it (and the
/// full-page images after each checkpoint told apart). A physical replication slot reserves the phase's WAL until it is read.
/// </summary>
internal sealed partial class WalByRelation
{
    private const string Slot = "loadbench_wal_by_relation";
    private readonly string _startLsn;

    private string? _endLsn;

    private WalByRelation(string startLsn) => _startLsn = startLsn;

    /// <summary>Marks the phase's end (the WAL flushed by then); <see cref="PrintAsync"/> reads up to it.</summary>
    public async Task EndAsync(string adminCs)
    {
        await using var ds = NpgsqlDataSource.Create(adminCs);
        _endLsn = (string)(await ds.CreateCommand("SELECT pg_current_wal_flush_lsn()::text").ExecuteScalarAsync())!;
    }

    public static async Task<WalByRelation> StartAsync(string adminCs)
    {
        await using var ds = NpgsqlDataSource.Create(adminCs);
        await using (var setup = ds.CreateCommand($"CREATE EXTENSION IF NOT EXISTS pg_walinspect; SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = '{Slot}'"))
        {
            await setup.ExecuteNonQueryAsync();
        }

        // The slot reserves WAL from the last checkpoint's redo pointer on; the phase starts at the current insert position.
        await using var cmd = ds.CreateCommand($"SELECT pg_current_wal_insert_lsn()::text FROM pg_create_physical_replication_slot('{Slot}', true)");
        await using var r = await cmd.ExecuteReaderAsync();
        await r.ReadAsync();
        return new WalByRelation(r.GetString(0));
    }

    /// <summary>Reads the WAL from the start to now, prints it by relation, and drops the slot.</summary>
    public async Task PrintAsync(Func<string, string> csOf, long messages, string label, int rows = 24)
    {
        await using var ds = NpgsqlDataSource.Create(csOf("postgres"));
        var endLsn = _endLsn ?? (string)(await ds.CreateCommand("SELECT pg_current_wal_flush_lsn()::text").ExecuteScalarAsync())!;
        var list = new List<(long Db, long Node, string Rmgr, long Records, long Bytes, long Fpis, long FpiBytes)>();
        await using (var cmd = ds.CreateCommand("""
            SELECT coalesce(substring(block_ref from 'rel \d+/(\d+)/\d+')::bigint, -1),
                   coalesce(substring(block_ref from 'rel \d+/\d+/(\d+)')::bigint, -1),
                   resource_manager, count(*), sum(record_length)::bigint,
                   sum((SELECT count(*) FROM regexp_matches(coalesce(block_ref, ''), 'FPW', 'g')))::bigint, sum(fpi_length)::bigint
            FROM pg_get_wal_records_info($1::pg_lsn, $2::pg_lsn)
            GROUP BY 1, 2, 3
            """))
        {
            cmd.CommandTimeout = 600;
            cmd.Parameters.Add(new() { Value = _startLsn });
            cmd.Parameters.Add(new() { Value = endLsn });
            await using var r = await cmd.ExecuteReaderAsync();
            while (await r.ReadAsync())
            {
                list.Add((r.GetInt64(0), r.GetInt64(1), r.GetString(2), r.GetInt64(3), r.GetInt64(4), r.GetInt64(5), r.GetInt64(6)));
            }
        }

        await using (var drop = ds.CreateCommand($"SELECT pg_drop_replication_slot('{Slot}')"))
        {
            await drop.ExecuteNonQueryAsync();
        }

        // Relation names from each database (a partition's or index's file node; 0 is a shared catalog).
        var names = new Dictionary<(long, long), string>();
        var dbNames = new Dictionary<long, string>();
        await using (var cmd = ds.CreateCommand("SELECT oid::bigint, datname FROM pg_database"))
        await using (var r = await cmd.ExecuteReaderAsync())
        {
            while (await r.ReadAsync())
            {
                dbNames[r.GetInt64(0)] = r.GetString(1);
            }
        }

        foreach (var db in list.Select(x => x.Db).Where(d => dbNames.ContainsKey(d)).Distinct())
        {
            await using var dbDs = NpgsqlDataSource.Create(csOf(dbNames[db]));
            await using var cmd = dbDs.CreateCommand("SELECT n, coalesce(pg_filenode_relation(0, n::oid)::regclass::text, '?') FROM unnest($1::bigint[]) AS n");
            cmd.Parameters.Add(new() { Value = list.Where(x => x.Db == db).Select(x => x.Node).Distinct().ToArray() });
            await using var r = await cmd.ExecuteReaderAsync();
            while (await r.ReadAsync())
            {
                names[(db, r.GetInt64(0))] = r.GetString(1);
            }
        }

        string Name(long db, long node) => db < 0 ? "(no block: commits, other records)"
            : db == 0 ? $"shared catalog {node}"
            : $"{dbNames.GetValueOrDefault(db, db.ToString(CultureInfo.InvariantCulture))}.{names.GetValueOrDefault((db, node), node.ToString(CultureInfo.InvariantCulture))}";

        var total = list.Sum(x => x.Bytes);
        var n = Math.Max(1, messages);
        Console.WriteLine();
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"WAL by relation and resource manager, {label} ({_startLsn} → {endLsn}; {list.Sum(x => x.Records) / (double)n:F1} records, {total / (double)n:N0} bytes, {list.Sum(x => x.Fpis) / (double)n:F2} full-page images ({list.Sum(x => x.FpiBytes) / (double)n:N0} bytes) per message; a record is counted under its first block):"));
        Console.WriteLine("| relation | resource manager | records / message | bytes / message | share | full-page images / message | their bytes / message |");
        Console.WriteLine("|---|---|---:|---:|---:|---:|---:|");
        foreach (var x in list.OrderByDescending(x => x.Bytes).Take(rows))
        {
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"| {Name(x.Db, x.Node)} | {x.Rmgr} | {x.Records / (double)n:F2} | {x.Bytes / (double)n:N0} | {x.Bytes / (double)Math.Max(1, total):P1} | {x.Fpis / (double)n:F3} | {x.FpiBytes / (double)n:N0} |"));
        }
    }
}

/// <summary>One paired phase's PostgreSQL work (issue 15, h15y): the server's CPU by kind, the loaded platform's commits, WAL.</summary>
internal sealed class PhaseServerWork
{
    private readonly ServerCpuSampler _cpu;
    private readonly string _cs;
    private readonly string _database;
    private readonly PgCounters _start;

    private PhaseServerWork(ServerCpuSampler cpu, string cs, string database, PgCounters start) =>
        (_cpu, _cs, _database, _start) = (cpu, cs, database, start);

    public IReadOnlyList<(string Kind, double Seconds)> Kinds { get; private set; } = [];

    public double ServerUsPerMessage { get; private set; }

    public double BackendsUsPerMessage { get; private set; }

    public double CommitsPerMessage { get; private set; }

    public double WalBytesPerMessage { get; private set; }

    public static async Task<PhaseServerWork> StartAsync(PumpFleet.EventStore.Local.PrivatePostgres pg, string database)
    {
        var cs = pg.ConnectionString(database);
        var start = await PgCounters.ReadAsync(cs);
        return new PhaseServerWork(ServerCpuSampler.Start(pg.DataDirectory), cs, database, start);
    }

    public async Task<PhaseServerWork> StopAsync(long messages)
    {
        Kinds = await _cpu.StopAsync();
        await _cpu.DisposeAsync();
        var end = await PgCounters.ReadAsync(_cs);
        var n = (double)Math.Max(1, messages);
        ServerUsPerMessage = Kinds.Sum(k => k.Seconds) * 1e6 / n;
        BackendsUsPerMessage = Kinds.Where(k => k.Kind == $"client backends, database {_database}").Sum(k => k.Seconds) * 1e6 / n;
        CommitsPerMessage = (end.Commits - _start.Commits) / n;
        WalBytesPerMessage = (end.WalBytes - _start.WalBytes) / n;
        return this;
    }
}
