using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text;
using MQTTnet;
using MQTTnet.Protocol;
using MQTTnet.Server;
using Npgsql;
using PumpFleet.EventStore;
using PumpFleet.EventStore.Benchmarks;
using PumpFleet.EventStore.Local;
using PumpFleet.Simulator.Transport;

// End-to-end load benchmark. Usage (after `dotnet build -c Release src/Silo`):
//   dotnet run -c Release --project bench/LoadBench [-- --mode short|long --hubs 64 --pumps-per-hub 4 --events-per-message 50]
//   ... -- --tracing off|unsampled|file: the platform without tracing (default), with a tracer provider that samples
//       nothing, or with every span written to a file; `file` prints the latency budget of the fixed-rate phase
//   ... -- --flood [--flood-rate 200 --flood-load 2000]: the honest hubs' ack latency with and without a wrong-password flood
//   ... -- --warmup-seconds 5 --warmup-rate 500: the untimed load before the first measured phase (events/s)
//   ... -- --ack-log FILE: each message of the offered-rate phase (publish time, publish→PUBACK ms) as TSV, to place the tail in time
//   ... -- --statement-stats [--statement-rows 16]: PostgreSQL's time per statement and per function (triggers too) per appended event
//   ... -- --server-work: PostgreSQL's CPU by process kind (client backends, autovacuum, checkpointer, WAL writer) and its WAL by
//       relation and resource manager (pg_walinspect) over the offered-rate phase (paired runs print the CPU and WAL per phase always)
//   ... -- --perf-postgres FILE: `perf record -g` of the private server's processes over the offered-rate phase (`perf report -i FILE`)
//   ... -- --compare-env:K=V (repeatable) and/or --compare-connection-options "Max Auto Prepare=0" and/or
//       --compare-silo-dll PATH (another build, e.g. an earlier commit's) [--rounds 3]: two
//       platforms in one run (A as configured, B with the compared settings), fixed-rate phases alternating A B B A …
//   ... -- --profile DIR [--profile-tools /tmp/h15p-tools --profile-trace gc-verbose --profile-perf]: while each platform phase runs, dotnet-trace (CPU samples,
//       also as speedscope JSON) and dotnet-counters (System.Runtime: GC, allocation, thread pool) attached to the
//       platform, written to DIR (the tools are `dotnet tool install --tool-path`; the figures of a profiled run are
//       the profiler's as well as the platform's: use it to attribute, not to measure)
//   ... -- --million [--pumps 1000000 --hubs 500 --minutes 45 --gcdump PATH]: a million registered pumps reporting hourly in real time (MillionRun.cs;
//       --gcdump: the live objects per active pump after a full blocking collection, through dotnet-gcdump; the first dump
//       after --gcdump-baseline-reports N first reports (default 20,000; 0 = before the hubs connect); --rewind-window N)
// The platform runs as its own process (the all-in-one silo with the embedded broker, simulator off) so its CPU and
// memory are measured apart from the load generator and PostgreSQL.
var mode = Arg("--mode", "short");
var hubs = int.Parse(Arg("--hubs", "64"), CultureInfo.InvariantCulture);
var pumpsPerHub = int.Parse(Arg("--pumps-per-hub", "4"), CultureInfo.InvariantCulture);
var perMessage = int.Parse(Arg("--events-per-message", "50"), CultureInfo.InvariantCulture);
var fixedRate = int.Parse(Arg("--fixed-rate", "5000"), CultureInfo.InvariantCulture);
// --warmup-seconds N --warmup-rate R: the untimed load before the first measured phase (default 5 s at 500 events/s:
// activations, pairing, the first JIT). A freshly started platform keeps getting cheaper for a minute or more under
// load (tiered JIT, the readers' caches, the database's statistics): a longer warm-up at the offered rate measures the
// platform as it runs after that, and the default one as it runs just after a start.
var warmup = TimeSpan.FromSeconds(double.Parse(Arg("--warmup-seconds", "5"), CultureInfo.InvariantCulture));
var warmupRate = int.Parse(Arg("--warmup-rate", "500"), CultureInfo.InvariantCulture);
var phase = TimeSpan.FromSeconds(mode == "long" ? 120 : 20);
var tracing = Arg("--tracing", "off");
var spanFile = tracing == "file" ? Path.Combine(Path.GetTempPath(), $"pumpfleet-spans-{Guid.NewGuid():N}.tsv") : null;
var platformEnv = tracing switch
{
    "off" => new Dictionary<string, string>(),
    "unsampled" => new Dictionary<string, string> { ["PumpFleet__Tracing__Enabled"] = "true", ["PumpFleet__Tracing__SampleRatio"] = "0" },
    "file" => new Dictionary<string, string> { ["PumpFleet__Tracing__SpanFile"] = spanFile! },
    _ => throw new ArgumentException($"--tracing must be off, unsampled or file, not '{tracing}'."),
};
// --connection-options "Max Auto Prepare=0": appended to the platform's connection string (the private server's port
// is known only at run time), to compare Npgsql settings in the same build.
var connectionOptions = Arg("--connection-options", "");
foreach (var kv in args.Where(a => a.StartsWith("--env:", StringComparison.Ordinal)).Select(a => a["--env:".Length..].Split('=', 2)))
{
    platformEnv[kv[0]] = kv[1]; // e.g. --env:PumpFleet__Grains__GroupCommit=false, to compare settings in one build
}
var repoRoot = FindRepoRoot();
// --silo-dll PATH: a copy of the Release silo elsewhere, so that a long run (--million) is not disturbed by rebuilds.
var siloDll = Arg("--silo-dll", Path.Combine(repoRoot, "src/Silo/bin/Release/net10.0/PumpFleet.Silo.dll"));
if (!File.Exists(siloDll))
{
    Console.Error.WriteLine($"{siloDll} not found: run `dotnet build -c Release src/Silo` first.");
    return 2;
}

if (args.Contains("--million"))
{
    return await MillionRun.RunAsync(args, siloDll); // issue 15: a million pumps in real time (MillionRun.cs)
}

Console.WriteLine($"Load benchmark ({mode}): {hubs} hubs x {pumpsPerHub} pumps, {perMessage} events per message, phases of {phase.TotalSeconds:N0} s after a warm-up of {warmup.TotalSeconds:N0} s at {warmupRate:N0} events/s, tracing {tracing}, load average {File.ReadAllText("/proc/loadavg").Trim()}");
if (platformEnv.Count > 0 || connectionOptions.Length > 0)
{
    Console.WriteLine($"Platform settings: {string.Join(", ", platformEnv.Select(kv => $"{kv.Key}={kv.Value}"))} {connectionOptions}".TrimEnd());
}
// --statement-stats: pg_stat_statements and function counters (a little overhead for every platform of the run), and a
// table of PostgreSQL's time per statement per appended event over the fixed-rate phase (each platform's, when paired).
var statementStats = args.Contains("--statement-stats");
// --statement-rows N: how many statements the table lists (16; all the readers' statements need ~80).
PgStatements.Rows = int.Parse(Arg("--statement-rows", "16"), CultureInfo.InvariantCulture);
// --pg-settings name=value,...: more server settings (e.g. pg_stat_statements.track_planning=on with --statement-stats).
var pgSettings = Arg("--pg-settings", "").Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
await using var pg = await PrivatePostgres.StartAsync(durable: true, progress: Console.WriteLine, statementStatistics: statementStats, settings: pgSettings);
var compareEnv = args.Where(a => a.StartsWith("--compare-env:", StringComparison.Ordinal)).Select(a => a["--compare-env:".Length..].Split('=', 2)).ToList();
var compareOptions = Arg("--compare-connection-options", "");
// --compare-silo-dll PATH: B runs another build of the silo (e.g. an earlier commit's, built in its own worktree), so a
// regression between two commits is measured in one run like a setting is.
var siloDllB = Arg("--compare-silo-dll", siloDll);
if (!File.Exists(siloDllB))
{
    Console.Error.WriteLine($"{siloDllB} not found: build that commit's src/Silo in Release first.");
    return 2;
}

if (compareEnv.Count > 0 || compareOptions.Length > 0 || siloDllB != siloDll)
{
    // Paired comparison in one run: two platforms (A as configured, B with the compared settings), each on its own
    // database of the same server, both running throughout; fixed-rate phases alternate A B B A A B … so that load
    // from outside (other processes on the machine) and drift fall on both alike. The ratios are per round.
    var rounds = int.Parse(Arg("--rounds", "3"), CultureInfo.InvariantCulture);
    var envB = new Dictionary<string, string>(platformEnv);
    foreach (var kv in compareEnv)
    {
        envB[kv[0]] = kv[1];
    }

    var optionsB = string.Join(';', new[] { connectionOptions, compareOptions }.Where(o => o.Length > 0));
    await using (var admin = NpgsqlDataSource.Create(pg.ConnectionString()))
    {
        foreach (var db in new[] { "loadbench_a", "loadbench_b" })
        {
            await using var create = admin.CreateCommand($"CREATE DATABASE {db}");
            await create.ExecuteNonQueryAsync();
        }
    }

    string Cs(string db, string extra) => extra.Length == 0 ? pg.ConnectionString(db) : $"{pg.ConnectionString(db)};{extra}";
    var (mqttA, httpA, mqttB, httpB) = (FreePort(), FreePort(), FreePort(), FreePort());
    using var platformA = StartPlatform(siloDll, Cs("loadbench_a", connectionOptions), mqttA, httpA, platformEnv);
    using var platformB = StartPlatform(siloDllB, Cs("loadbench_b", optionsB), mqttB, httpB, envB);
    await WaitForAsync($"http://127.0.0.1:{httpA}/health/ready", TimeSpan.FromSeconds(120));
    await WaitForAsync($"http://127.0.0.1:{httpB}/health/ready", TimeSpan.FromSeconds(120));
    Console.WriteLine($"A: {string.Join(", ", platformEnv.Select(kv => $"{kv.Key}={kv.Value}"))} {connectionOptions}".TrimEnd());
    Console.WriteLine($"B: {string.Join(", ", envB.Select(kv => $"{kv.Key}={kv.Value}"))} {optionsB}".TrimEnd());
    if (siloDllB != siloDll)
    {
        Console.WriteLine($"A's silo: {siloDll}; B's silo: {siloDllB}");
    }
    var loadA = new HubLoad(hubs, pumpsPerHub, perMessage, "127.0.0.1", mqttA, "dev");
    var loadB = new HubLoad(hubs, pumpsPerHub, perMessage, "127.0.0.1", mqttB, "dev");
    await loadA.ConnectAsync();
    await loadB.ConnectAsync();
    await loadA.RunAsync(warmup, targetEventsPerSecond: warmupRate); // warm-up: activations, pairing, JIT
    await loadB.RunAsync(warmup, targetEventsPerSecond: warmupRate);
    var rows = new List<(int Round, string Which, double Rate, double P50, double P99, string Load, double CpuUsPerMessage, PhaseServerWork Pg)>();
    var messages = new Dictionary<string, long> { ["A"] = 0, ["B"] = 0 };
    var countersA0 = await PgCounters.ReadAsync(Cs("loadbench_a", ""));
    var countersB0 = await PgCounters.ReadAsync(Cs("loadbench_b", ""));
    var statementsA = statementStats ? await PgStatements.StartAsync(pg.ConnectionString(), Cs("loadbench_a", "")) : null;
    var statementsB = statementStats ? await PgStatements.ReadFunctionsAsync(Cs("loadbench_b", "")) : null;
    for (var round = 1; round <= rounds; round++)
    {
        foreach (var which in round % 2 == 1 ? new[] { "A", "B" } : ["B", "A"])
        {
            // The loaded platform's own CPU over its phase (the idle one's background work is not counted): the
            // platform's CPU per message, which shows a change to it even when PostgreSQL limits the throughput.
            var pid = which == "A" ? platformA.Id : platformB.Id;
            var db = which == "A" ? "loadbench_a" : "loadbench_b";
            // PostgreSQL's work in the phase (issue 15, h15y): the server's CPU by process kind (the idle platform's
            // polls included, as they are in the other arm's phases), its WAL, and the loaded platform's commits.
            var work = await PhaseServerWork.StartAsync(pg, db);
            var cpuBefore = CpuSeconds(pid);
            var r = await (which == "A" ? loadA : loadB).RunAsync(phase, fixedRate);
            var cpuUs = (CpuSeconds(pid) - cpuBefore) * 1e6 / Math.Max(1, r.LatenciesMs.Length);
            messages[which] += r.LatenciesMs.Length;
            rows.Add((round, which, r.EventsPerSecond, P(r.LatenciesMs, 0.50), P(r.LatenciesMs, 0.99), File.ReadAllText("/proc/loadavg").Split(' ')[0], cpuUs,
                await work.StopAsync(r.LatenciesMs.Length)));
        }
    }

    await Task.Delay(TimeSpan.FromSeconds(1.5)); // PostgreSQL publishes backends' counters at most once a second
    var countersA1 = await PgCounters.ReadAsync(Cs("loadbench_a", ""));
    var countersB1 = await PgCounters.ReadAsync(Cs("loadbench_b", ""));
    if (statementsA is not null && statementsB is not null)
    {
        await PgStatements.PrintAsync(pg.ConnectionString(), Cs("loadbench_a", ""), "loadbench_a", statementsA, messages["A"], messages["A"] * perMessage, "platform A, all rounds");
        await PgStatements.PrintAsync(pg.ConnectionString(), Cs("loadbench_b", ""), "loadbench_b", statementsB, messages["B"], messages["B"] * perMessage, "platform B, all rounds");
    }

    // The shared tail's hits and misses (EventStore:TailCache), when a platform reports them.
    using (var http = new HttpClient())
    {
        foreach (var (which, port) in new[] { ("A", httpA), ("B", httpB) })
        {
            string metrics;
            try
            {
                metrics = await http.GetStringAsync($"http://127.0.0.1:{port}/metrics");
            }
            catch (HttpRequestException e)
            {
                Console.WriteLine($"platform {which}: /metrics not read ({e.Message})"); // the summary below matters more
                continue;
            }

            foreach (var line in metrics.Split('\n').Where(l => l.StartsWith("pumpfleet_eventstore_tail_cache_reads", StringComparison.Ordinal)))
            {
                Console.WriteLine($"platform {which}: {line}");
            }
        }
    }

    await loadA.DisposeAsync();
    await loadB.DisposeAsync();
    platformA.Kill(entireProcessTree: true);
    platformB.Kill(entireProcessTree: true);
    Console.WriteLine();
    Console.WriteLine($"Paired phases at {fixedRate:N0} events/s offered ({perMessage} events per message), {phase.TotalSeconds:N0} s each:");
    Console.WriteLine("| round | platform | events/s | publish→ack p50 / p99 (ms) | platform CPU per message (µs) | PostgreSQL CPU per message (µs): server / its database's backends | transactions per message | WAL bytes per message (server) | load average (1 min) |");
    Console.WriteLine("|---:|---|---:|---|---:|---|---:|---:|---:|");
    foreach (var (round, which, rate, p50, p99, l, cpuUs, work) in rows)
    {
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"| {round} | {which} | {rate:N0} | {p50:F1} / {p99:F1} | {cpuUs:N0} | {work.ServerUsPerMessage:N0} / {work.BackendsUsPerMessage:N0} | {work.CommitsPerMessage:F2} | {work.WalBytesPerMessage:N0} | {l} |"));
    }

    double Median(IEnumerable<double> xs)
    {
        var a = xs.Order().ToArray();
        return a.Length % 2 == 1 ? a[a.Length / 2] : (a[(a.Length / 2) - 1] + a[a.Length / 2]) / 2;
    }

    var perRound = rows.GroupBy(r => r.Round).Select(g => (A: g.Single(x => x.Which == "A"), B: g.Single(x => x.Which == "B"))).ToList();
    Console.WriteLine();
    Console.WriteLine("| measure (median over rounds) | A | B | B / A (median of the rounds' ratios) |");
    Console.WriteLine("|---|---:|---:|---:|");
    Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"| events/s | {Median(perRound.Select(x => x.A.Rate)):N0} | {Median(perRound.Select(x => x.B.Rate)):N0} | {Median(perRound.Select(x => x.B.Rate / x.A.Rate)):F2} |"));
    Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"| p50 (ms) | {Median(perRound.Select(x => x.A.P50)):F1} | {Median(perRound.Select(x => x.B.P50)):F1} | {Median(perRound.Select(x => x.B.P50 / x.A.P50)):F2} |"));
    Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"| p99 (ms) | {Median(perRound.Select(x => x.A.P99)):F1} | {Median(perRound.Select(x => x.B.P99)):F1} | {Median(perRound.Select(x => x.B.P99 / x.A.P99)):F2} |"));
    Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"| platform CPU per message (µs) | {Median(perRound.Select(x => x.A.CpuUsPerMessage)):N0} | {Median(perRound.Select(x => x.B.CpuUsPerMessage)):N0} | {Median(perRound.Select(x => x.B.CpuUsPerMessage / x.A.CpuUsPerMessage)):F2} |"));
    Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"| PostgreSQL CPU per message, server (µs) | {Median(perRound.Select(x => x.A.Pg.ServerUsPerMessage)):N0} | {Median(perRound.Select(x => x.B.Pg.ServerUsPerMessage)):N0} | {Median(perRound.Select(x => x.B.Pg.ServerUsPerMessage / x.A.Pg.ServerUsPerMessage)):F2} |"));
    Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"| PostgreSQL CPU per message, the platform's backends (µs) | {Median(perRound.Select(x => x.A.Pg.BackendsUsPerMessage)):N0} | {Median(perRound.Select(x => x.B.Pg.BackendsUsPerMessage)):N0} | {Median(perRound.Select(x => x.B.Pg.BackendsUsPerMessage / x.A.Pg.BackendsUsPerMessage)):F2} |"));
    Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"| transactions per message | {Median(perRound.Select(x => x.A.Pg.CommitsPerMessage)):F2} | {Median(perRound.Select(x => x.B.Pg.CommitsPerMessage)):F2} | {Median(perRound.Select(x => x.B.Pg.CommitsPerMessage / x.A.Pg.CommitsPerMessage)):F2} |"));
    Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"| WAL bytes per message (server) | {Median(perRound.Select(x => x.A.Pg.WalBytesPerMessage)):N0} | {Median(perRound.Select(x => x.B.Pg.WalBytesPerMessage)):N0} | {Median(perRound.Select(x => x.B.Pg.WalBytesPerMessage / x.A.Pg.WalBytesPerMessage)):F2} |"));
    foreach (var which in new[] { "A", "B" })
    {
        // The server's CPU by process kind over all of this platform's phases (the other platform idle meanwhile).
        var kinds = rows.Where(x => x.Which == which).SelectMany(x => x.Pg.Kinds).GroupBy(k => k.Kind)
            .Select(g => (g.Key, g.Sum(k => k.Seconds))).OrderByDescending(k => k.Item2).ToList();
        ServerCpuSampler.Print(kinds, messages[which], rounds * phase.TotalSeconds, $"phases of platform {which}");
    }
    // Each platform's own database, over all its rounds (warm-up excluded): its transactions and row writes per message.
    string PerMessage(PgCounters c0, PgCounters c1, long n) => string.Create(CultureInfo.InvariantCulture,
        $"{(c1.Commits - c0.Commits) / (double)n:F2} transactions, {(c1.Inserts - c0.Inserts) / (double)n:F2} rows inserted, {(c1.Updates - c0.Updates) / (double)n:F2} updated ({(c1.HotUpdates - c0.HotUpdates) / (double)n:F2} HOT), {(c1.WalBytes - c0.WalBytes) / (double)n:N0} WAL bytes (server-wide)");
    Console.WriteLine($"| PostgreSQL per message | {PerMessage(countersA0, countersA1, Math.Max(1, messages["A"]))} | {PerMessage(countersB0, countersB1, Math.Max(1, messages["B"]))} | |");
    return 0;
}

var mqttPort = FreePort();
var httpPort = FreePort();
using var platform = StartPlatform(siloDll, string.IsNullOrEmpty(connectionOptions) ? pg.ConnectionString() : $"{pg.ConnectionString()};{connectionOptions}",
    mqttPort, httpPort, platformEnv);
await WaitForAsync($"http://127.0.0.1:{httpPort}/health/ready", TimeSpan.FromSeconds(90));
Console.WriteLine($"Platform pid {platform.Id} ready (MQTT {mqttPort}, HTTP {httpPort})");

var results = new List<(string Name, double EventsPerSecond, double[] LatenciesMs)>();
var load = new HubLoad(hubs, pumpsPerHub, perMessage, "127.0.0.1", mqttPort, "dev");
await load.ConnectAsync();
await load.RunAsync(warmup, targetEventsPerSecond: warmupRate);   // warm-up: activations, pairing, JIT

if (args.Contains("--flood"))
{
    // Wrong-password flood of --flood-rate connects/s against the same platform, hubs and offered load, alternated
    // with phases without it; the figure is the honest hubs' publish→ack p99 with the flood against without it.
    var floodRate = int.Parse(Arg("--flood-rate", "200"), CultureInfo.InvariantCulture);
    var floodLoad = int.Parse(Arg("--flood-load", "2000"), CultureInfo.InvariantCulture);
    var victims = await PasswordFlood.ProvisionVictimsAsync(pg.ConnectionString(), 4000);
    var phases = new List<(string Name, double EventsPerSecond, double[] LatenciesMs, PasswordFlood? Flood)>();
    for (var round = 1; round <= 2; round++)
    {
        var quiet = await load.RunAsync(phase, floodLoad);
        phases.Add(($"no flood ({round})", quiet.EventsPerSecond, quiet.LatenciesMs, null));
        // Round 1: wrong passwords for the connected hubs' own ids from one address (the per-id and per-address
        // backoffs answer). Round 2: wrong passwords for 4000 provisioned, idle hub ids from 256 addresses, so
        // nearly every attempt reaches the database read and PBKDF2 (the worst case for the hashing pool).
        var flood = round == 1 ? new PasswordFlood(mqttPort, floodRate, load.HubIds, addresses: 1)
                               : new PasswordFlood(mqttPort, floodRate, victims, addresses: 256);
        using var stopFlood = new CancellationTokenSource();
        var flooding = flood.RunAsync(stopFlood.Token);
        var noisy = await load.RunAsync(phase, floodLoad);
        await stopFlood.CancelAsync();
        await flooding;
        phases.Add((round == 1 ? "flood: connected hubs' ids, 1 address" : "flood: 4000 idle hub ids, 256 addresses", noisy.EventsPerSecond, noisy.LatenciesMs, flood));
    }

    platform.Kill(entireProcessTree: true);
    var quietP99 = phases.Where(x => x.Flood is null).Select(x => P(x.LatenciesMs, 0.99)).Average();
    Console.WriteLine();
    Console.WriteLine($"Wrong-password flood at {floodRate} connects/s, honest load {floodLoad:N0} events/s offered ({hubs} hubs), phases of {phase.TotalSeconds:N0} s:");
    Console.WriteLine("| phase | events/s | publish→ack p50 / p99 (ms) | p99 / no-flood p99 | flood connects/s made | CONNACK codes of the flood |");
    Console.WriteLine("|---|---:|---|---:|---:|---|");
    foreach (var (name, rate, lat, flood) in phases)
    {
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"| {name} | {rate:N0} | {P(lat, 0.50):F1} / {P(lat, 0.99):F1} | {P(lat, 0.99) / quietP99:F2} | {(flood is null ? "–" : (flood.Attempts / phase.TotalSeconds).ToString("N0", CultureInfo.InvariantCulture))} | {flood?.Summary ?? "–"} |"));
    }

    await load.DisposeAsync();
    return 0;
}

var profileDir = Arg("--profile", "");
var profileTools = Arg("--profile-tools", "");
var profileTrace = Arg("--profile-trace", "");   // a dotnet-trace profile (e.g. gc-verbose: allocations by type and stack)
var profilePerf = args.Contains("--profile-perf"); // also `perf record` (real CPU samples; start the platform with --env:DOTNET_PerfMapEnabled=1)
var cpu0 = CpuSeconds(platform.Id);
var pgCpu0 = PostgresCpuSeconds(pg.DataDirectory);
var pg0 = await PgCounters.ReadAsync(pg.ConnectionString());
var tables0 = await PgCounters.TablesAsync(pg.ConnectionString());
var statements0 = statementStats ? await PgStatements.StartAsync(pg.ConnectionString(), pg.ConnectionString()) : null;
// --server-work: PostgreSQL's CPU by process kind and its WAL by relation over the offered-rate phase (issue 15, h15y).
var serverWork = args.Contains("--server-work");
var walByRelation = serverWork ? await WalByRelation.StartAsync(pg.ConnectionString()) : null;
var cpuByKind = serverWork ? ServerCpuSampler.Start(pg.DataDirectory) : null;
var perfPostgres = ServerCpuSampler.StartPerf(pg.DataDirectory, Arg("--perf-postgres", ""), phase - TimeSpan.FromSeconds(2));
var fixedFrom = (DateTime.UtcNow - DateTime.UnixEpoch).Ticks / 10;
var fixedProfile = Profiler.Start(profileDir, profileTools, profileTrace, profilePerf, platform.Id, "fixed", phase);
var fixedRun = await load.RunAsync(phase, fixedRate);
var fixedTo = (DateTime.UtcNow - DateTime.UnixEpoch).Ticks / 10;
// --ack-log FILE: every message of the offered-rate phase (publish time from the phase's start, publish→PUBACK), to
// place the slowest 1 % in time against what else ran (pages, polls, GC, checkpoints).
var ackLog = Arg("--ack-log", "");
if (ackLog.Length > 0)
{
    await File.WriteAllLinesAsync(ackLog, load.LastRunAcks.Select(a => string.Create(CultureInfo.InvariantCulture, $"{a.StartSeconds:F4}\t{a.LatencyMs:F2}")));
}

var cpuFixed = CpuSeconds(platform.Id);
var pgCpuFixed = PostgresCpuSeconds(pg.DataDirectory);
var kindsFixed = cpuByKind is null ? null : await cpuByKind.StopAsync();
if (walByRelation is not null)
{
    await walByRelation.EndAsync(pg.ConnectionString());
}
await Profiler.WaitAsync(fixedProfile);
await Profiler.WaitAsync(perfPostgres is null ? [] : [perfPostgres]);
await Task.Delay(TimeSpan.FromSeconds(1.5)); // PostgreSQL publishes backends' counters at most once a second
var pg1 = await PgCounters.ReadAsync(pg.ConnectionString());
var tables1 = await PgCounters.TablesAsync(pg.ConnectionString());
if (statements0 is not null)
{
    await PgStatements.PrintAsync(pg.ConnectionString(), pg.ConnectionString(), "postgres", statements0, fixedRun.LatenciesMs.Length,
        fixedRun.LatenciesMs.Length * (long)perMessage, $"offered-rate phase ({fixedRate:N0} events/s)");
}

if (cpuByKind is not null && walByRelation is not null)
{
    ServerCpuSampler.Print(kindsFixed!, fixedRun.LatenciesMs.Length, phase.TotalSeconds, $"offered-rate phase ({fixedRate:N0} events/s)");
    await cpuByKind.DisposeAsync();
    try
    {
        await walByRelation.PrintAsync(db => pg.ConnectionString(db), fixedRun.LatenciesMs.Length, $"offered-rate phase ({fixedRate:N0} events/s)");
    }
    catch (NpgsqlException e)
    {
        Console.WriteLine($"WAL by relation not read: {e.Message}"); // the rest of the run's figures still count
    }
}

results.Add(($"platform, offered {fixedRate:N0} events/s", fixedRun.EventsPerSecond, fixedRun.LatenciesMs));
var cpuSat0 = CpuSeconds(platform.Id);
var pgCpuSat0 = PostgresCpuSeconds(pg.DataDirectory);
var satProfile = Profiler.Start(profileDir, profileTools, profileTrace, profilePerf, platform.Id, "saturation", phase);
var satRun = await load.RunAsync(phase, targetEventsPerSecond: 0);
results.Add(("platform, saturation", satRun.EventsPerSecond, satRun.LatenciesMs));
var cpu1 = CpuSeconds(platform.Id);
var pgCpu1 = PostgresCpuSeconds(pg.DataDirectory);
await Profiler.WaitAsync(satProfile);
var rssMb = RssMb(platform.Id);
await load.DisposeAsync();
long stored;
await using (var countDs = NpgsqlDataSource.Create(pg.ConnectionString()))
{
    stored = await EventTableProbes.CountDeviceEventsAsync(countDs);
}

// Baseline 1: a bare MQTTnet broker (no interceptor), same clients, payloads and pacing.
var barePort = FreePort();
using (var bare = new MqttServerFactory().CreateMqttServer(new MqttServerOptionsBuilder().WithDefaultEndpoint()
           .WithDefaultEndpointBoundIPAddress(IPAddress.Loopback).WithDefaultEndpointBoundIPV6Address(IPAddress.None)
           .WithDefaultEndpointPort(barePort).Build()))
{
    await bare.StartAsync();
    var bareLoad = new HubLoad(hubs, pumpsPerHub, perMessage, "127.0.0.1", barePort, "dev");
    await bareLoad.ConnectAsync();
    var bareRun = await bareLoad.RunAsync(phase, targetEventsPerSecond: 0);
    results.Add(("bare MQTT QoS 1 publish→PUBACK, saturation", bareRun.EventsPerSecond, bareRun.LatenciesMs));
    var bareFixed = await bareLoad.RunAsync(phase, fixedRate);
    results.Add(($"bare MQTT QoS 1 publish→PUBACK, offered {fixedRate:N0} events/s", bareFixed.EventsPerSecond, bareFixed.LatenciesMs));
    await bareLoad.DisposeAsync();
    await bare.StopAsync();
}

// Baseline 2: raw binary COPY of as many event rows as the platform stored at saturation, same shape.
var copyRows = (int)Math.Max(10_000, satRun.EventsPerSecond * phase.TotalSeconds);
var copyRate = await CopyBaselineAsync(pg.ConnectionString(), copyRows);

platform.Kill(entireProcessTree: true);
var sat = results[1];
Console.WriteLine();
Console.WriteLine($"Stored device events: {stored:N0} (every acknowledged event is in the event table: checked = {stored >= load.Acked})");
Console.WriteLine();
Console.WriteLine("| run | events/s | publish→ack p50 / p95 / p99 (ms) |");
Console.WriteLine("|---|---:|---|");
foreach (var (name, rate, lat) in results)
{
    Console.WriteLine($"| {name} | {rate:N0} | {P(lat, 0.50):F1} / {P(lat, 0.95):F1} / {P(lat, 0.99):F1} |");
}

Console.WriteLine($"| raw PostgreSQL COPY of {copyRows:N0} event rows | {copyRate:N0} | – |");
Console.WriteLine();
Console.WriteLine($"| ratio | value |");
Console.WriteLine("|---|---:|");
Console.WriteLine($"| platform saturation / bare MQTT | {sat.EventsPerSecond / results[2].EventsPerSecond:P0} |");
Console.WriteLine($"| platform saturation / raw COPY | {sat.EventsPerSecond / copyRate:P0} |");
Console.WriteLine($"| platform process CPU during both platform phases | {(cpu1 - cpu0) / (2 * phase.TotalSeconds):P0} of one core |");
Console.WriteLine($"| PostgreSQL processes CPU during both platform phases | {(pgCpu1 - pgCpu0) / (2 * phase.TotalSeconds):P0} of one core |");
Console.WriteLine($"| platform process resident memory at the end | {rssMb:N0} MiB |");
// CPU time per message of each phase (the platform's own process; PostgreSQL's processes together), so a change to
// the platform's CPU per message shows even when the throughput is PostgreSQL's limit.
Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
    $"| CPU per message, offered-rate phase: platform / PostgreSQL | {(cpuFixed - cpu0) * 1e6 / Math.Max(1, fixedRun.LatenciesMs.Length):N0} µs / {(pgCpuFixed - pgCpu0) * 1e6 / Math.Max(1, fixedRun.LatenciesMs.Length):N0} µs ({(cpuFixed - cpu0) / phase.TotalSeconds:P0} / {(pgCpuFixed - pgCpu0) / phase.TotalSeconds:P0} of one core) |"));
Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
    $"| CPU per message, saturation phase: platform / PostgreSQL | {(cpu1 - cpuSat0) * 1e6 / Math.Max(1, satRun.LatenciesMs.Length):N0} µs / {(pgCpu1 - pgCpuSat0) * 1e6 / Math.Max(1, satRun.LatenciesMs.Length):N0} µs ({(cpu1 - cpuSat0) / phase.TotalSeconds:P0} / {(pgCpu1 - pgCpuSat0) / phase.TotalSeconds:P0} of one core) |"));
var fixedMessages = fixedRun.LatenciesMs.Length;
Console.WriteLine();
Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"PostgreSQL per message in the fixed-rate phase ({fixedMessages:N0} messages): " +
    $"{(pg1.Commits - pg0.Commits) / (double)fixedMessages:F2} commits, {(pg1.Inserts - pg0.Inserts) / (double)fixedMessages:F2} rows inserted, " +
    $"{(pg1.Updates - pg0.Updates) / (double)fixedMessages:F2} rows updated, {(pg1.Deletes - pg0.Deletes) / (double)fixedMessages:F2} deleted, " +
    $"{(pg1.WalBytes - pg0.WalBytes) / (double)fixedMessages:N0} WAL bytes"));
// Who writes: transaction ids taken (each writing transaction or subtransaction takes one; read-only ones take none, so
// this against the commits above separates the commits that flush WAL from the readers' read-only ones), WAL records
// and full-page images, and per table its rows inserted and updated and how many of the updates were HOT.
Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"  writing transactions (xids taken, subtransactions included): {(pg1.Xids - pg0.Xids) / (double)fixedMessages:F2} per message; " +
    $"updates HOT: {(pg1.HotUpdates - pg0.HotUpdates) / (double)fixedMessages:F2} of {(pg1.Updates - pg0.Updates) / (double)fixedMessages:F2}; " +
    $"WAL records {(pg1.WalRecords - pg0.WalRecords) / (double)fixedMessages:F1}, full-page images {(pg1.WalFullPages - pg0.WalFullPages) / (double)fixedMessages:F2} per message"));
foreach (var (table, ins, upd, hot) in tables1.Select(t => (t.Table, Ins: t.Inserts - tables0.FirstOrDefault(x => x.Table == t.Table).Inserts,
             Upd: t.Updates - tables0.FirstOrDefault(x => x.Table == t.Table).Updates, Hot: t.HotUpdates - tables0.FirstOrDefault(x => x.Table == t.Table).HotUpdates))
             .Where(t => t.Ins + t.Upd > 0).OrderByDescending(t => t.Ins + t.Upd))
{
    Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"  {table}: {ins / (double)fixedMessages:F2} inserted, {upd / (double)fixedMessages:F2} updated ({hot / (double)fixedMessages:F2} HOT) per message"));
}

if (spanFile is not null)
{
    LatencyBudget.Print(spanFile, fixedFrom, fixedTo, fixedRun.LatenciesMs);
    File.Delete(spanFile);
}

return 0;

string Arg(string name, string fallback)
{
    var i = Array.IndexOf(args, name);
    return i >= 0 && i + 1 < args.Length ? args[i + 1] : fallback;
}

static double P(double[] sorted, double q) => sorted.Length == 0 ? double.NaN : sorted[Math.Min(sorted.Length - 1, (int)(q * sorted.Length))];

static int FreePort()
{
    using var l = new TcpListener(IPAddress.Loopback, 0);
    l.Start();
    return ((IPEndPoint)l.LocalEndpoint).Port;
}

static string FindRepoRoot()
{
    var d = new DirectoryInfo(AppContext.BaseDirectory);
    while (d is not null && !File.Exists(Path.Combine(d.FullName, "PumpFleet.sln")))
    {
        d = d.Parent;
    }

    return d?.FullName ?? throw new InvalidOperationException("Run from inside the repository.");
}

static Process StartPlatform(string dll, string cs, int mqttPort, int httpPort, Dictionary<string, string> extraEnv)
{
    var psi = new ProcessStartInfo("dotnet", [dll])
    {
        WorkingDirectory = Path.GetDirectoryName(dll)!,
        RedirectStandardOutput = true,
        RedirectStandardError = true,
    };
    psi.Environment["ASPNETCORE_ENVIRONMENT"] = "Development";
    psi.Environment["ConnectionStrings__PumpFleet"] = cs;
    psi.Environment["Urls"] = $"http://127.0.0.1:{httpPort}";
    psi.Environment["Gateway__Mqtt__Port"] = mqttPort.ToString(CultureInfo.InvariantCulture);
    psi.Environment["PumpFleet__Simulator__Enabled"] = "false";
    psi.Environment["PumpFleet__SiloPort"] = FreePort().ToString(CultureInfo.InvariantCulture);
    psi.Environment["PumpFleet__GatewayPort"] = FreePort().ToString(CultureInfo.InvariantCulture);
    psi.Environment["Logging__LogLevel__Default"] = "Warning";
    foreach (var (k, v) in extraEnv)
    {
        psi.Environment[k] = v;
    }

    var p = Process.Start(psi)!;
    // The console log goes to stdout: pass on the gateway's "not acknowledged, hub disconnected" lines, which name
    // the reason (rate-limited, backpressure, ingest-timeout, …) when a hub of the load is dropped.
    p.OutputDataReceived += (_, e) =>
    {
        if (e.Data is not null && e.Data.Contains("not acknowledged", StringComparison.Ordinal))
        {
            Console.Error.WriteLine("platform: " + e.Data);
        }
    };
    p.ErrorDataReceived += (_, e) => { if (e.Data is not null) Console.Error.WriteLine("platform: " + e.Data); };
    p.BeginOutputReadLine();
    p.BeginErrorReadLine();
    return p;
}

static async Task WaitForAsync(string url, TimeSpan timeout)
{
    using var http = new HttpClient();
    var sw = Stopwatch.StartNew();
    while (sw.Elapsed < timeout)
    {
        try
        {
            if ((await http.GetAsync(url)).IsSuccessStatusCode)
            {
                return;
            }
        }
        catch (HttpRequestException)
        {
            // Not listening yet.
        }

        await Task.Delay(250);
    }

    throw new TimeoutException($"{url} not ready after {timeout}.");
}

static double CpuSeconds(int pid, bool withChildren = false)
{
    var f = File.ReadAllText($"/proc/{pid}/stat").Split(' ');
    var ticks = long.Parse(f[13], CultureInfo.InvariantCulture) + long.Parse(f[14], CultureInfo.InvariantCulture);
    if (withChildren)
    {
        ticks += long.Parse(f[15], CultureInfo.InvariantCulture) + long.Parse(f[16], CultureInfo.InvariantCulture);
    }

    return ticks / 100.0;
}

// The private server's processes only: counting every process named postgres took in the other PostgreSQL servers of a
// shared machine (other helpers' tests and benchmarks).
static double PostgresCpuSeconds(string dataDir) => MillionRun.PostgresCpuSeconds(dataDir);

static double RssMb(int pid) =>
    File.ReadAllLines($"/proc/{pid}/status").Where(l => l.StartsWith("VmRSS:", StringComparison.Ordinal))
        .Select(l => long.Parse(l.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], CultureInfo.InvariantCulture) / 1024.0).First();

static async Task<double> CopyBaselineAsync(string cs, int rows)
{
    await using var ds = NpgsqlDataSource.Create(cs);
    await RawCopyBaseline.CreateTableAsync(ds);
    var t0 = new DateTime(2026, 11, 1, 0, 0, 0, DateTimeKind.Utc);
    const string data = """{"seq":1,"at":"2026-11-01T01:00:00Z","from":"2026-11-01T00:00:00Z","volumeMl":0.0208,"kind":"basal"}""";
    // Rows are made while they are copied, as the platform's are while they arrive: 256 streams, one COPY.
    IEnumerable<RawCopyRow> Rows()
    {
        for (var i = 0; i < rows; i++)
        {
            var at = new DateTimeOffset(t0.AddHours(i));
            yield return new RawCopyRow($"COPY-{i % 256:D4}", (i / 256) + 1,
                new EventToAppend(Guid.NewGuid(), "dose.delivered", data, (i / 256) + 1, at, at, false, """{"hubId":"hub-0001"}"""));
        }
    }

    var sw = Stopwatch.StartNew();
    await RawCopyBaseline.CopyAsync(ds, Rows());
    return rows / sw.Elapsed.TotalSeconds;
}

/// <summary>Hubs that publish batches of dose events for their pumps, QoS 1, and time publish→PUBACK (public: bench/LiveBench uses it as its background load).</summary>
public sealed class HubLoad(int hubs, int pumpsPerHub, int perMessage, string host, int port, string fleetSecret) : IAsyncDisposable
{
    private readonly List<(IMqttClient Client, string HubId)> _clients = [];
    private readonly Dictionary<string, long> _seq = new(StringComparer.Ordinal);
    private readonly DateTimeOffset _t0 = new(2026, 11, 1, 0, 0, 0, TimeSpan.Zero);

    public long Acked { get; private set; }

    /// <summary>The last run's messages: when each was published (seconds from the run's start) and its publish→PUBACK time (ms), in publish order.</summary>
    public (double StartSeconds, double LatencyMs)[] LastRunAcks { get; private set; } = [];

    public string[] HubIds => [.. _clients.Select(c => c.HubId)];

    public async Task ConnectAsync()
    {
        var run = Guid.NewGuid().ToString("N")[..6];
        for (var h = 0; h < hubs; h++)
        {
            var hubId = $"LB{run}-H{h:D3}";
            var client = new MqttClientFactory().CreateMqttClient();
            var r = await client.ConnectAsync(new MqttClientOptionsBuilder().WithTcpServer(host, port).WithClientId(hubId)
                .WithCredentials(hubId, FleetSecretHubCredentials.Derive(fleetSecret, hubId)).WithCleanSession().WithTimeout(TimeSpan.FromSeconds(30)).Build());
            if (r.ResultCode != MqttClientConnectResultCode.Success)
            {
                throw new InvalidOperationException($"{hubId}: {r.ResultCode}");
            }

            _clients.Add((client, hubId));
        }
    }

    /// <summary>Publishes for <paramref name="duration"/>; a target of 0 means as fast as each hub's PUBACKs allow.</summary>
    public async Task<(double EventsPerSecond, double[] LatenciesMs)> RunAsync(TimeSpan duration, int targetEventsPerSecond)
    {
        var latencies = new List<double>[_clients.Count];
        var starts = new List<double>[_clients.Count];
        long events = 0;
        var t0 = Stopwatch.GetTimestamp();
        var sw = Stopwatch.StartNew();
        var messagesPerSecondPerHub = targetEventsPerSecond <= 0 ? 0 : targetEventsPerSecond / (double)perMessage / _clients.Count;
        await Task.WhenAll(_clients.Select((c, i) => Task.Run(async () =>
        {
            var lat = latencies[i] = [];
            starts[i] = [];
            var sent = 0;
            var p = 0;
            while (sw.Elapsed < duration)
            {
                if (messagesPerSecondPerHub > 0)
                {
                    // Open-loop pacing: message n is due at n / rate; a late hub does not sleep.
                    var due = TimeSpan.FromSeconds(sent / messagesPerSecondPerHub);
                    if (due > sw.Elapsed)
                    {
                        await Task.Delay(due - sw.Elapsed);
                    }
                }

                var serial = $"{c.HubId}-P{p++ % pumpsPerHub}";
                var (topic, payload) = Batch(c.HubId, serial);
                var t = Stopwatch.GetTimestamp();
                var r = await c.Client.PublishAsync(new MqttApplicationMessageBuilder().WithTopic(topic).WithPayload(payload)
                    .WithQualityOfServiceLevel(MqttQualityOfServiceLevel.AtLeastOnce).Build());
                if (!r.IsSuccess)
                {
                    throw new InvalidOperationException($"{serial}: PUBACK {r.ReasonCode}");
                }

                lat.Add(Stopwatch.GetElapsedTime(t).TotalMilliseconds);
                starts[i].Add(Stopwatch.GetElapsedTime(t0, t).TotalSeconds);
                Interlocked.Add(ref events, perMessage);
                sent++;
            }
        })));
        var elapsed = sw.Elapsed.TotalSeconds;
        Acked += events;
        LastRunAcks = [.. latencies.Zip(starts).SelectMany(x => x.Second.Zip(x.First)).OrderBy(x => x.First)];
        return (events / elapsed, [.. latencies.SelectMany(l => l).Order()]);
    }

    private (string Topic, byte[] Payload) Batch(string hubId, string serial)
    {
        lock (_seq)
        {
            var first = !_seq.TryGetValue(serial, out var seq);
            var sb = new StringBuilder(perMessage * 120);
            sb.Append("""{"v":1,""");
            if (first)
            {
                sb.Append("""    "device":{"model":"SM2-40","firmware":"4.2.1","lot":"L2291","reservoirCapacityMl":40},""");
            }

            sb.Append("\"events\":[");
            for (var i = 0; i < perMessage; i++)
            {
                seq++;
                var at = _t0.AddMinutes(seq * 10);
                if (i > 0)
                {
                    sb.Append(',');
                }

                sb.Append(CultureInfo.InvariantCulture, $$"""{"seq":{{seq}},"type":"dose.delivered","at":"{{at:yyyy-MM-ddTHH:mm:ssZ}}","from":"{{at.AddMinutes(-10):yyyy-MM-ddTHH:mm:ssZ}}","volumeMl":0.0035,"kind":"basal"}""");
            }

            sb.Append("]}");
            _seq[serial] = seq;
            return ($"pumpfleet/v1/hubs/{hubId}/pumps/{serial}/events", Encoding.UTF8.GetBytes(sb.ToString()));
        }
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var (client, _) in _clients)
        {
            await client.DisconnectAsync();
            client.Dispose();
        }
    }
}

/// <summary>
/// Wrong-password connects at a fixed rate, open loop, over raw sockets (an MQTT 3.1.1 CONNECT, then the CONNACK's
/// return code), from one or several loopback source addresses (127.0.1.x), so the gateway's per-address backoff sees
/// one attacker or many.
/// </summary>
internal sealed class PasswordFlood(int port, int rate, string[] hubIds, int addresses)
{
    private readonly ConcurrentDictionary<string, int> _codes = new(StringComparer.Ordinal);
    private long _attempts;

    public long Attempts => Interlocked.Read(ref _attempts);

    public string Summary => string.Join(", ", _codes.OrderByDescending(kv => kv.Value).Select(kv => $"{kv.Key} {kv.Value}"));

    /// <summary>Inserts <paramref name="count"/> idle hubs sharing one PBKDF2 hash (100,000 iterations) of a secret nobody sends.</summary>
    public static async Task<string[]> ProvisionVictimsAsync(string cs, int count)
    {
        var salt = System.Security.Cryptography.RandomNumberGenerator.GetBytes(16);
        var hash = System.Security.Cryptography.Rfc2898DeriveBytes.Pbkdf2(Guid.NewGuid().ToByteArray(), salt, 100_000,
            System.Security.Cryptography.HashAlgorithmName.SHA256, 32);
        var stored = $"pbkdf2-sha256$100000${Convert.ToBase64String(salt)}${Convert.ToBase64String(hash)}";
        var ids = Enumerable.Range(0, count).Select(i => $"VICTIM-{i:D5}").ToArray();
        await using var ds = NpgsqlDataSource.Create(cs);
        await using var cmd = ds.CreateCommand("INSERT INTO pf_gateway_hubs (hub_id, secret_hash, created_by) SELECT unnest($1::text[]), $2, 'loadbench' ON CONFLICT DO NOTHING");
        cmd.Parameters.Add(new() { Value = ids });
        cmd.Parameters.Add(new() { Value = stored });
        await cmd.ExecuteNonQueryAsync();
        return ids;
    }

    public async Task RunAsync(CancellationToken stop)
    {
        var outstanding = new List<Task>();
        var sw = Stopwatch.StartNew();
        for (long n = 0; !stop.IsCancellationRequested; n++)
        {
            var due = TimeSpan.FromSeconds(n / (double)rate);
            if (due > sw.Elapsed)
            {
                await Task.Delay(due - sw.Elapsed, CancellationToken.None);
            }

            Interlocked.Increment(ref _attempts);
            outstanding.Add(AttemptAsync(hubIds[n % hubIds.Length], (int)(n % addresses)));
            if (outstanding.Count > 4000)
            {
                outstanding.RemoveAll(t => t.IsCompleted);
            }
        }

        await Task.WhenAll(outstanding);
    }

    private async Task AttemptAsync(string hubId, int address)
    {
        string code;
        try
        {
            using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
            socket.Bind(new IPEndPoint(new IPAddress([127, 0, 1, (byte)(1 + address)]), 0));
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(15));
            await socket.ConnectAsync(new IPEndPoint(IPAddress.Loopback, port), timeout.Token);
            await socket.SendAsync(Connect(hubId, "wrong-password-" + Guid.NewGuid().ToString("N")), timeout.Token);
            var connack = new byte[4];
            var read = 0;
            while (read < 4)
            {
                var n = await socket.ReceiveAsync(connack.AsMemory(read), timeout.Token);
                if (n == 0)
                {
                    break;
                }

                read += n;
            }

            code = read == 4 ? connack[3] switch
            {
                1 => "1 (rate exceeded, as v3)",
                3 => "3 server unavailable/busy",
                4 => "4 bad user name or password",
                5 => "5 not authorized",
                var c => c.ToString(CultureInfo.InvariantCulture),
            } : "closed without CONNACK";
        }
        catch (OperationCanceledException)
        {
            code = "no answer in 15 s";
        }
        catch (SocketException e)
        {
            code = "socket " + e.SocketErrorCode;
        }

        _codes.AddOrUpdate(code, 1, (_, v) => v + 1);
    }

    private static byte[] Connect(string clientId, string password)
    {
        static void Str(List<byte> b, string s)
        {
            var bytes = Encoding.UTF8.GetBytes(s);
            b.Add((byte)(bytes.Length >> 8));
            b.Add((byte)bytes.Length);
            b.AddRange(bytes);
        }

        var body = new List<byte>();
        Str(body, "MQTT");
        body.Add(4);    // MQTT 3.1.1
        body.Add(0xC2); // user name, password, clean session
        body.Add(0);
        body.Add(60);   // keep-alive
        Str(body, clientId);
        Str(body, clientId);
        Str(body, password);
        var packet = new List<byte> { 0x10 };
        var len = body.Count;
        do
        {
            var digit = (byte)(len % 128);
            len /= 128;
            packet.Add(len > 0 ? (byte)(digit | 0x80) : digit);
        }
        while (len > 0);

        packet.AddRange(body);
        return [.. packet];
    }
}

/// <summary>
/// dotnet-trace and dotnet-counters attached to the platform for one phase (--profile): the trace's CPU samples say
/// which methods the platform's CPU per message goes to, the counters its GC and allocation rate.
/// </summary>
internal static class Profiler
{
    public static Process[] Start(string dir, string tools, string traceProfile, bool perf, int pid, string name, TimeSpan phase)
    {
        if (dir.Length == 0)
        {
            return [];
        }

        Directory.CreateDirectory(dir);
        // A little shorter than the phase, so the samples end while the phase still runs (steady state only).
        var duration = phase - TimeSpan.FromSeconds(2);
        var span = duration.ToString(@"dd\:hh\:mm\:ss", CultureInfo.InvariantCulture);
        string Tool(string t) => tools.Length == 0 ? t : Path.Combine(tools, t);
        string[] traceArgs = ["collect", "-p", pid.ToString(CultureInfo.InvariantCulture), "--duration", span, "--format", "Speedscope", "-o", Path.Combine(dir, $"{name}.nettrace")];
        var trace = Process.Start(new ProcessStartInfo(Tool("dotnet-trace"), traceProfile.Length == 0 ? traceArgs : [.. traceArgs, "--profile", traceProfile])
        { RedirectStandardOutput = true, RedirectStandardError = true })!;
        var counters = Process.Start(new ProcessStartInfo(Tool("dotnet-counters"),
            ["collect", "-p", pid.ToString(CultureInfo.InvariantCulture), "--duration", span, "--refresh-interval", "1", "--format", "csv",
             "--counters", "System.Runtime", "-o", Path.Combine(dir, $"{name}-counters.csv")])
        { RedirectStandardOutput = true, RedirectStandardError = true })!;
        if (!perf)
        {
            return [trace, counters];
        }

        // Real CPU time (the EventPipe sampler samples every thread, waiting ones too); 499 Hz with call graphs.
        var perfRecord = Process.Start(new ProcessStartInfo("perf",
            ["record", "-F", "499", "-g", "-p", pid.ToString(CultureInfo.InvariantCulture), "-o", Path.Combine(dir, $"{name}.perf.data"), "--", "sleep",
             ((int)duration.TotalSeconds).ToString(CultureInfo.InvariantCulture)])
        { RedirectStandardOutput = true, RedirectStandardError = true })!;
        return [trace, counters, perfRecord];
    }

    public static async Task WaitAsync(Process[] tools)
    {
        foreach (var p in tools)
        {
            using (p)
            {
                var output = p.StandardOutput.ReadToEndAsync();
                var errors = p.StandardError.ReadToEndAsync();
                await p.WaitForExitAsync();
                if (p.ExitCode != 0)
                {
                    await Console.Error.WriteLineAsync($"{p.StartInfo.FileName} exited {p.ExitCode}: {await errors}{await output}");
                }
            }
        }
    }
}
