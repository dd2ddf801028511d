using System.Globalization;
using Npgsql;
using PumpFleet.EventStore;
using PumpFleet.EventStore.Local;
using PumpFleet.LiveBench;

// Usage: dotnet run -c Release --project bench/LiveBench [-- --pages 10 --probes 250 --load 5000 --dashboards 1,10,100 --phase 20]
// 1. Commit → browser: the platform process (all-in-one silo, embedded broker, simulator off) under --load events/s of
//    hub traffic over real MQTT (LoadBench's HubLoad); --pages real Chromium pages (one browser, one context per page)
//    on the live Alerts page; a probe pump's anomaly opened / resolved appended with the bench's own event store, one
//    event per append; per probe and page, the append's return (just after its COMMIT) to the SSE message's dispatch
//    in the page (performance.timeOrigin + performance.now(), corrected by the page's measured clock offset).
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

    var load = new HubLoad(64, 4, 50, "127.0.0.1", mqttPort, "dev");
    await load.ConnectAsync();
    await load.RunAsync(TimeSpan.FromSeconds(5), 500); // warm-up: activations, pairing, JIT

    await using var ds = NpgsqlDataSource.Create(cs);
    var probe = new ProbePump(new NpgsqlEventStore(ds), $"LVPROBE-{Guid.NewGuid():N}"[..16].ToUpperInvariant());
    await probe.IdentifyAsync();
    await using var browser = queriesOnly && httpDashboards ? null : await Browser.LaunchAsync();
    if (!queriesOnly)
    {
        // 1. Commit → browser, first without background load (the baseline of the same run), then under it.
        var open = await browser!.OpenAsync(baseUrl, pages);
        Console.WriteLine($"{pages} pages connected; clock offsets page − bench: {string.Join(", ", open.Select(p => $"{p.OffsetMs:F2}±{p.UncertaintyMs:F2}"))} ms");
        await probe.WarmUpAsync(open, TimeSpan.FromSeconds(60));
        var latencyRows = new List<string>();
        foreach (var background in new[] { 0, rate })
        {
            var loadRun = background > 0 ? load.RunAsync(TimeSpan.FromSeconds((probes * 0.15) + 8), background) : null;
            if (loadRun is not null)
            {
                await Task.Delay(TimeSpan.FromSeconds(3));
            }

            var sent = await probe.RunAsync(probes, TimeSpan.FromMilliseconds(100), TimeSpan.FromMilliseconds(100));
            var bg = loadRun is null ? (EventsPerSecond: 0.0, LatenciesMs: Array.Empty<double>()) : await loadRun;
            await Latency.WaitForAllAsync(open, sent, TimeSpan.FromSeconds(90));
            var (all, worst, missing) = await Latency.CollectAsync(open, sent);
            var label = background == 0
                ? "no background load"
                : $"{background:N0} events/s offered, {bg.EventsPerSecond:N0} achieved (publish→ack p50 {P(bg.LatenciesMs, 0.5):F0} ms, p99 {P(bg.LatenciesMs, 0.99):F0} ms)";
            latencyRows.Add(Row($"{label}: every (probe, page) delivery", all));
            latencyRows.Add(Row($"{label}: per probe, its slowest page", worst));
            latencyRows.Add(Row($"{label}: the append itself (call → return)", [.. sent.Select(s => s.AppendMs).Order()]));
            latencyRows.Add($"| {label}: deliveries missing after 90 s | {missing} | | | | |");
        }

        await browser.CloseAsync(open);
        Console.WriteLine();
        Console.WriteLine($"Commit → browser ({probes} probes × {pages} pages per row):");
        Console.WriteLine("| measure | n | p50 ms | p95 ms | p99 ms | max ms |");
        Console.WriteLine("|---|---:|---:|---:|---:|---:|");
        latencyRows.ForEach(Console.WriteLine);
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

async Task<PlatformProcess> StartPlatformAsync(bool readCache)
{
    var started = PlatformProcess.Start(siloDll, cs, mqttPort, httpPort,
        new Dictionary<string, string> { ["Dashboard__ReadCache__Enabled"] = readCache ? "true" : "false" });
    await Ports.WaitForAsync($"http://127.0.0.1:{httpPort}/health/ready", TimeSpan.FromSeconds(120));
    Console.WriteLine($"Platform pid {started.Pid} ready (MQTT {mqttPort}, HTTP {httpPort}), read cache {(readCache ? "on" : "off")}");
    return started;
}

static string Row(string name, double[] sorted) => string.Create(CultureInfo.InvariantCulture,
    $"| {name} | {sorted.Length} | {P(sorted, 0.50):F1} | {P(sorted, 0.95):F1} | {P(sorted, 0.99):F1} | {(sorted.Length == 0 ? double.NaN : sorted[^1]):F1} |");

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

string ArgText(string name, string fallback)
{
    var i = Array.IndexOf(args, name);
    return i >= 0 && i + 1 < args.Length ? args[i + 1] : fallback;
}
