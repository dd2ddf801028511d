using System.Globalization;
using Npgsql;
using PumpFleet.EventStore;
using PumpFleet.EventStore.Local;
using PumpFleet.LiveBench;

// Usage: dotnet run -c Release --project bench/LiveBench [-- --pages 10 --probes 250 --load 5000 --dashboards 1,10,100 --phase 20]
//        [--env K=V]… [--compare-env K=V[;K2=V2]]… [--rounds N]
// 1. Commit → browser: the platform process (all-in-one silo, embedded broker, simulator off) under --load events/s of
//    hub traffic over real MQTT (LoadBench's HubLoad); --pages real Chromium pages (one browser, one context per page)
//    on the live Alerts page; a probe pump's anomaly opened / resolved appended with the bench's own event store, one
//    event per append; per probe and page, the append's return (just after its COMMIT) to the SSE message's dispatch
//    in the page (performance.timeOrigin + performance.now(), corrected by the page's measured clock offset); and its
//    breakdown by the server's stamps in each message (Dashboard:LiveTimings): the queue's read, the live feed, the
//    browser's stream (Latency.Segments).
// 2. Database statements per second (pg_stat_statements, all databases) with a probe event every 0.5 s and 0, then
//    each of --dashboards pages open on the Alerts page; the 0-page phase is the baseline of the same run.
//    --http-dashboards: the dashboards are HTTP clients doing what the page does (HttpDashboards) instead of Chromium
//    pages; --compare-cache: the phases run twice, the platform restarted with Dashboard:ReadCache:Enabled=false, then
//    =true (the API's shared read cache off, then on); --queries-only: part 2 only.
var pages = Arg("--pages", 10);
var probes = Arg("--probes", 250);
var rate = Arg("--load", 5000);
var phaseSeconds = Arg("--phase", 20);
var dashboards = ArgText("--dashboards", "1,10,100").Split(',').Select(s => int.Parse(s, CultureInfo.InvariantCulture)).ToArray();
var queriesOnly = args.Contains("--queries-only");
var httpDashboards = args.Contains("--http-dashboards");
// --env K=V (repeatable): platform environment for every run; --compare-env K=V[;K2=V2] (repeatable): part 1 also
// runs with each of these (the platform restarted), after the base configuration, alternating for --rounds rounds.
var baseEnv = EnvArgs("--env").SelectMany(Pairs).ToDictionary(e => e.Key, e => e.Value);
List<(string Name, Dictionary<string, string> Env)> configs = [("base", [])];
configs.AddRange(EnvArgs("--compare-env").Select(a => (a, Pairs(a).ToDictionary(e => e.Key, e => e.Value))));
var rounds = Arg("--rounds", 1);
bool[] cacheModes = args.Contains("--compare-cache") ? [false, true] : [true];
var siloDll = Path.Combine(FindRepoRoot(), "src/Silo/bin/Release/net10.0/PumpFleet.Silo.dll");
if (!File.Exists(siloDll))
{
    Console.Error.WriteLine($"{siloDll} not found: run `dotnet build -c Release bench/LiveBench` first.");
    return 2;
}

Console.WriteLine($"Live benchmark: {pages} pages, {probes} probes, background {rate:N0} events/s over MQTT, dashboards {string.Join('/', dashboards)} " +
                  $"for {phaseSeconds} s each; load average {File.ReadAllText("/proc/loadavg").Trim()}; {DateTime.UtcNow:yyyy-MM-dd HH:mm} UTC");

// A private, durable PostgreSQL with pg_stat_statements preloaded: start it once to set the library, then again.
var dataDir = Path.Combine(Path.GetTempPath(), "pumpfleet-livebench-" + Guid.NewGuid().ToString("N")[..8]);
var first = await PrivatePostgres.StartAsync(dataDir, durable: true, progress: Console.WriteLine);
await Exec(first.ConnectionString(), "ALTER SYSTEM SET shared_preload_libraries = 'pg_stat_statements'");
await first.StopAsync();
var pg = await PrivatePostgres.StartAsync(dataDir, durable: true, progress: Console.WriteLine);
PlatformProcess? platform = null;
var cs = pg.ConnectionString();
var mqttPort = Ports.Free();
var httpPort = Ports.Free();
try
{
    await Exec(cs, "CREATE EXTENSION IF NOT EXISTS pg_stat_statements");
    var cacheOn = queriesOnly ? cacheModes[0] : true;
    platform = await StartPlatformAsync(cacheOn);
    var baseUrl = $"http://127.0.0.1:{httpPort}";

    var load = new HubLoad(64, 4, 50, "127.0.0.1", mqttPort, "dev"); // replaced when part 1 restarts the platform
    await load.ConnectAsync();
    await load.RunAsync(TimeSpan.FromSeconds(5), 500); // warm-up: activations, pairing, JIT

    await using var ds = NpgsqlDataSource.Create(cs);
    var probe = new ProbePump(new NpgsqlEventStore(ds), $"LVPROBE-{Guid.NewGuid():N}"[..16].ToUpperInvariant());
    await probe.IdentifyAsync();
    await using var browser = queriesOnly && httpDashboards ? null : await Browser.LaunchAsync();
    if (!queriesOnly)
    {
        // 1. Commit → browser, first without background load (the baseline of the same run), then under it; with
        //    --compare-env, for each configuration in turn (the platform restarted), alternating for --rounds rounds.
        var results = new Dictionary<(int Config, int Background), LatencyResult>();
        var horizonTables = new List<string>();
        var achieved = new Dictionary<(int Config, int Background), List<(double EventsPerSecond, double[] LatenciesMs)>>();
        for (var round = 0; round < rounds; round++)
        {
            for (var c = 0; c < configs.Count; c++)
            {
                if (round > 0 || c > 0)
                {
                    await load.DisposeAsync();
                    await platform.DisposeAsync();
                    platform = null;
                    platform = await StartPlatformAsync(cacheOn, configs[c].Env);
                    load = new HubLoad(64, 4, 50, "127.0.0.1", mqttPort, "dev");
                    await load.ConnectAsync();
                    await load.RunAsync(TimeSpan.FromSeconds(5), 500);
                }

                var open = await browser!.OpenAsync(baseUrl, pages);
                Console.WriteLine($"[{configs[c].Name}, round {round + 1}] {pages} pages connected; clock offsets page − bench: {string.Join(", ", open.Select(p => $"{p.OffsetMs:F2}±{p.UncertaintyMs:F2}"))} ms");
                await probe.WarmUpAsync(open, TimeSpan.FromSeconds(60));
                foreach (var background in new[] { 0, rate })
                {
                    var loadRun = background > 0 ? load.RunAsync(TimeSpan.FromSeconds((probes * 0.15) + 8), background) : null;
                    if (loadRun is not null)
                    {
                        await Task.Delay(TimeSpan.FromSeconds(3));
                    }

                    using var sampling = new CancellationTokenSource();
                    var sampler = new HorizonSampler(ds);
                    var samplerRun = background > 0 ? sampler.RunAsync(sampling.Token) : Task.CompletedTask;
                    var sent = await probe.RunAsync(probes, TimeSpan.FromMilliseconds(100), TimeSpan.FromMilliseconds(100));
                    await sampling.CancelAsync();
                    await samplerRun;
                    if (background > 0)
                    {
                        horizonTables.Add($"[{configs[c].Name}, round {round + 1}, {background:N0} events/s]");
                        horizonTables.AddRange(sampler.Table(8));
                    }

                    var bg = loadRun is null ? (EventsPerSecond: 0.0, LatenciesMs: Array.Empty<double>()) : await loadRun;
                    await Latency.WaitForAllAsync(open, sent, TimeSpan.FromSeconds(90));
                    var (all, worst, missing, segments) = await Latency.CollectAsync(open, sent);
                    var key = (c, background);
                    var r = results.TryGetValue(key, out var had) ? had : results[key] = new LatencyResult();
                    r.All.AddRange(all);
                    r.Worst.AddRange(worst);
                    r.Append.AddRange(sent.Select(x => x.AppendMs));
                    r.Segments.AddRange(segments);
                    r.Missing += missing;
                    (achieved.TryGetValue(key, out var list) ? list : achieved[key] = []).Add(bg);
                }

                await browser.CloseAsync(open);
            }
        }

        Console.WriteLine();
        Console.WriteLine($"Commit → browser ({probes} probes × {pages} pages per row and round, {rounds} round(s); load average {File.ReadAllText("/proc/loadavg").Trim()}):");
        Console.WriteLine("| configuration | measure | n | p50 ms | p95 ms | p99 ms | max ms |");
        Console.WriteLine("|---|---|---:|---:|---:|---:|---:|");
        var breakdown = new List<string>();
        foreach (var ((c, background), r) in results.OrderBy(x => x.Key.Background).ThenBy(x => x.Key.Config))
        {
            var bgs = achieved[(c, background)];
            var label = background == 0
                ? "no background load"
                : $"{background:N0} events/s offered, {bgs.Average(b => b.EventsPerSecond):N0} achieved (publish→ack p50 {P([.. bgs.SelectMany(b => b.LatenciesMs).Order()], 0.5):F0} ms, p99 {P([.. bgs.SelectMany(b => b.LatenciesMs).Order()], 0.99):F0} ms)";
            var name = configs[c].Name;
            Console.WriteLine(Row(name, $"{label}: every (probe, page) delivery", [.. r.All.Order()]));
            Console.WriteLine(Row(name, $"{label}: per probe, its slowest page", [.. r.Worst.Order()]));
            Console.WriteLine(Row(name, $"{label}: the append itself (call → return)", [.. r.Append.Order()]));
            Console.WriteLine($"| {name} | {label}: deliveries missing after 90 s | {r.Missing} | | | | |");
            var parts = new Func<Segments, double>[] { x => x.ToReadStart, x => x.Read, x => x.ToFeed, x => x.ToWrite, x => x.ToPage };
            var at = background == 0 ? "no load" : $"{background:N0} events/s";
            for (var i = 0; i < parts.Length; i++)
            {
                var values = r.Segments.Select(parts[i]).Where(v => !double.IsNaN(v)).Order().ToArray();
                breakdown.Add(Row(name, $"{at}: {Latency.SegmentNames[i]}", values));
                if (i == 0)
                {
                    // The first segment split: a read after the commit that did not return the event, or none.
                    foreach (var held in new[] { true, false })
                    {
                        var part = r.Segments.Where(x => x.HeldBack == held).Select(parts[0]).Where(v => !double.IsNaN(v)).Order().ToArray();
                        breakdown.Add(Row(name, $"{at}: … {(held ? "a read after the commit did not return it yet (horizon or full page)" : "the first read after the commit returned it")}", part));
                    }
                }
            }
        }

        Console.WriteLine();
        Console.WriteLine("Breakdown of every (probe, page) delivery by the server's stamps (Dashboard:LiveTimings; commit = the bench's append returned):");
        Console.WriteLine("| configuration | segment | n | p50 ms | p95 ms | p99 ms | max ms |");
        Console.WriteLine("|---|---|---:|---:|---:|---:|---:|");
        breakdown.ForEach(Console.WriteLine);
        Console.WriteLine();
        horizonTables.ForEach(Console.WriteLine);
        if (configs.Count > 1)
        {
            // Part 2 runs in the base configuration.
            await platform.DisposeAsync();
            platform = null;
            platform = await StartPlatformAsync(cacheOn);
        }
    }

    // 2. Statements per second with 0, 1, 10, 100 dashboards. No hub load here: its own statements swamp the
    //    dashboards' and move with its achieved rate; a probe every 0.5 s changes the read models at every tick of
    //    the live feed, so every open page is told to re-read at every tick, the most a page re-reads.
    foreach (var mode in cacheModes)
    {
        if (mode != cacheOn)
        {
            await platform.DisposeAsync();
            platform = null;
            cacheOn = mode;
            platform = await StartPlatformAsync(cacheOn);
        }

        Console.WriteLine();
        Console.WriteLine($"Database statements per second (pg_stat_statements), a probe event every 0.5 s, no hub load, {phaseSeconds} s per phase, " +
                          $"read cache {(cacheOn ? "on" : "off")}, dashboards as {(httpDashboards ? "HTTP clients doing what the Alerts page does" : "Chromium pages")}; " +
                          $"load average {File.ReadAllText("/proc/loadavg").Trim()}:");
        Console.WriteLine("| read cache | open dashboards | statements/s | beyond 0 dashboards | reads of the API's read models /s | transactions/s | page reloads/s | top statements beyond the baseline (calls/s) |");
        Console.WriteLine("|---|---:|---:|---:|---:|---:|---:|---|");
        StatementCounts.Phase? baseline = null;
        foreach (var n in new[] { 0 }.Concat(dashboards))
        {
            List<OpenPage> opened = [];
            HttpDashboards? clients = null;
            if (n > 0 && httpDashboards)
            {
                clients = await HttpDashboards.OpenAsync(baseUrl, n, TimeSpan.FromSeconds(120));
            }
            else if (n > 0)
            {
                opened = await browser!.OpenAsync(baseUrl, n);
            }

            await Task.Delay(TimeSpan.FromSeconds(5)); // the pages' first reads are a one-off cost, not the steady state
            var reloadsBefore = clients?.Reloads ?? 0;
            var before = await StatementCounts.ReadAsync(ds);
            var clock = System.Diagnostics.Stopwatch.StartNew();
            await probe.RunAsync(phaseSeconds * 2, TimeSpan.FromMilliseconds(500), TimeSpan.Zero);
            var after = await StatementCounts.ReadAsync(ds);
            var seconds = clock.Elapsed.TotalSeconds;
            var reloads = clients is null ? "" : ((clients.Reloads - reloadsBefore) / seconds).ToString("N1", CultureInfo.InvariantCulture);
            var phase = StatementCounts.Diff(before, after, seconds);
            baseline ??= phase;
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"| {(cacheOn ? "on" : "off")} | {n} | {phase.StatementsPerSecond:N1} | {phase.StatementsPerSecond - baseline.StatementsPerSecond:+0.0;-0.0;0.0} | {phase.ApiReadsPerSecond:N1} | {phase.TransactionsPerSecond:N1} | {reloads} | {phase.TopBeyond(baseline, 3)} |"));
            if (clients is not null)
            {
                if (clients.Failures > 0)
                {
                    Console.WriteLine($"  ({clients.Failures} failed requests of the HTTP dashboards)");
                }

                await clients.DisposeAsync();
            }

            if (browser is not null)
            {
                await browser.CloseAsync(opened);
            }
        }
    }

    await load.DisposeAsync();
    Console.WriteLine($"load average at the end {File.ReadAllText("/proc/loadavg").Trim()}");
    return 0;
}
finally
{
    if (platform is not null)
    {
        await platform.DisposeAsync();
    }

    await pg.StopAsync();
    Directory.Delete(dataDir, recursive: true);
}

async Task<PlatformProcess> StartPlatformAsync(bool readCache, IReadOnlyDictionary<string, string>? env = null)
{
    // The server stamps each pushed anomaly message (Dashboard:LiveTimings) for the breakdown of part 1.
    var environment = new Dictionary<string, string>(baseEnv)
    {
        ["Dashboard__ReadCache__Enabled"] = readCache ? "true" : "false",
        ["Dashboard__LiveTimings"] = "true",
    };
    foreach (var (k, v) in env ?? configs[0].Env)
    {
        environment[k] = v;
    }

    var started = PlatformProcess.Start(siloDll, cs, mqttPort, httpPort, environment);
    await Ports.WaitForAsync($"http://127.0.0.1:{httpPort}/health/ready", TimeSpan.FromSeconds(120));
    Console.WriteLine($"Platform pid {started.Pid} ready (MQTT {mqttPort}, HTTP {httpPort}), read cache {(readCache ? "on" : "off")}" +
                      (environment.Count > 2 ? $", {string.Join(", ", environment.Where(e => e.Key != "Dashboard__ReadCache__Enabled" && e.Key != "Dashboard__LiveTimings").Select(e => $"{e.Key}={e.Value}"))}" : ""));
    return started;
}

static string Row(string config, string name, double[] sorted) => string.Create(CultureInfo.InvariantCulture,
    $"| {config} | {name} | {sorted.Length} | {P(sorted, 0.50):F1} | {P(sorted, 0.95):F1} | {P(sorted, 0.99):F1} | {(sorted.Length == 0 ? double.NaN : sorted[^1]):F1} |");

static double P(double[] sorted, double q) => sorted.Length == 0 ? double.NaN : sorted[Math.Min(sorted.Length - 1, (int)Math.Ceiling(q * sorted.Length) - 1)];

static async Task Exec(string cs, string sql)
{
    await using var ds = NpgsqlDataSource.Create(cs);
    await using var cmd = ds.CreateCommand(sql);
    await cmd.ExecuteNonQueryAsync();
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

int Arg(string name, int fallback) => int.Parse(ArgText(name, fallback.ToString(CultureInfo.InvariantCulture)), CultureInfo.InvariantCulture);

IEnumerable<string> EnvArgs(string name) => args.Select((a, i) => (a, i)).Where(x => x.a == name && x.i + 1 < args.Length).Select(x => args[x.i + 1]);

static IEnumerable<KeyValuePair<string, string>> Pairs(string text) => text.Split(';', StringSplitOptions.RemoveEmptyEntries)
    .Select(kv => kv.Split('=', 2)).Select(kv => new KeyValuePair<string, string>(kv[0].Replace(":", "__", StringComparison.Ordinal), kv.Length > 1 ? kv[1] : ""));

string ArgText(string name, string fallback)
{
    var i = Array.IndexOf(args, name);
    return i >= 0 && i + 1 < args.Length ? args[i + 1] : fallback;
}
