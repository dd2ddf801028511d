using System.Diagnostics;
using System.Globalization;
using System.Text;
using JasperFx.Events;
using Microsoft.Extensions.Logging.Abstractions;
using Npgsql;
using PumpFleet.EventStore;
using PumpFleet.EventStore.Benchmarks;
using PumpFleet.EventStore.Local;
using PumpFleet.EventStoreComparison;

// Usage: dotnet run -c Release --project bench/EventStoreComparison [-- --quick] [--append-only --rounds N] [--out FILE]
// One private PostgreSQL (fsync on) serves every store in the same run; see docs/benchmarks.md.
if (args.Length > 0 && args[0] == "--child")
{
    return await StartupProbe.RunChildAsync(args);
}

var quick = args.Contains("--quick");
var settings = new Settings(
    Streams: Arg("--streams", 16),
    Batches: Arg("--batches", quick ? 10 : 60),
    BatchSize: Arg("--batch-size", 100),
    Rounds: Arg("--rounds", quick ? 2 : 5),
    LatencySamples: Arg("--latency-samples", quick ? 60 : 300),
    GapTrials: Arg("--gap-trials", quick ? 3 : 12),
    StartupRuns: Arg("--startup-runs", quick ? 2 : 5));
var outPath = ArgString("--out") ?? Path.Combine(Path.GetTempPath(), "pumpfleet-eventstore-comparison.md");
var report = new StringBuilder();

Log($"Event store comparison ({(quick ? "quick" : "full")}): {settings}");
Log($"machine: {Environment.ProcessorCount} cores, load average {LoadAverage()}, .NET {Environment.Version}");
await using var pg = await PrivatePostgres.StartAsync(durable: true, progress: Log);
var cs = pg.ConnectionString() + ";Maximum Pool Size=100";
await using var ds = NpgsqlDataSource.Create(cs);
await new SchemaMigrator(ds, [], NullLogger<SchemaMigrator>.Instance).MigrateAsync();
await RawCopyBaseline.CreateTableAsync(ds);
Log($"PostgreSQL {await ScalarAsync(ds, "SHOW server_version")}");

var ours = new NpgsqlEventStore(ds);
await using var martenQuick = MartenStores.Create(cs, "mt_quick", EventAppendMode.Quick);
await using var martenRich = MartenStores.Create(cs, "mt_rich", EventAppendMode.Rich);
await martenQuick.Storage.ApplyAllConfiguredChangesToDatabaseAsync();
await martenRich.Storage.ApplyAllConfiguredChangesToDatabaseAsync();

var appenders = new Appender[]
{
    new("raw COPY (baseline)", null, (s, v, b) => RawCopyBaseline.CopyAsync(ds, s, v, b.Select(e => e.Ours))),
    new("our store (NpgsqlEventStore)", "ours", async (s, v, b) => await ours.AppendAsync(s, v, b.Select(e => e.Ours).ToList())),
    new("Marten 9.58 Quick + expected version", "marten", (s, v, b) => MartenStores.AppendAsync(martenQuick, s, v, b)),
    new("Marten 9.58 Rich + expected version", "marten-rich", (s, v, b) => MartenStores.AppendAsync(martenRich, s, v, b)),
};

// 0. Both stores must reject a stale expected version, or the throughput comparison is not like for like.
report.AppendLine("## Expected-version enforcement").AppendLine().AppendLine("| store | stale expected version rejected |").AppendLine("|---|---|");
foreach (var a in appenders.Skip(1))
{
    var rows = Rows.Make(20);
    var stream = $"occ-{a.Key}";
    await a.AppendAsync(stream, 0, rows[..10]);
    string outcome;
    try
    {
        await a.AppendAsync(stream, 0, rows[10..]);
        outcome = "**no**: the second writer's batch was stored";
    }
    catch (Exception e) when (e is not OutOfMemoryException)
    {
        outcome = $"yes ({e.GetType().Name})";
    }

    report.AppendLine($"| {a.Name} | {outcome} |");
    Log($"expected version, {a.Name}: {outcome}");
}

report.AppendLine();

// 1. Append throughput: the same rows, 16 streams concurrently, batches of 100; the order of the stores rotates per round.
var rates = appenders.ToDictionary(a => a.Name, _ => new List<double>());
for (var round = 1; round <= settings.Rounds; round++)
{
    var order = appenders.Skip(round % appenders.Length).Concat(appenders.Take(round % appenders.Length)).ToList();
    foreach (var a in order)
    {
        var rows = Enumerable.Range(0, settings.Streams).Select(_ => Rows.Make(settings.Batches * settings.BatchSize)).ToArray();
        var sw = Stopwatch.StartNew();
        await Task.WhenAll(rows.Select((r, s) => Task.Run(async () =>
        {
            long version = 0;
            foreach (var batch in Rows.Batches(r, settings.BatchSize))
            {
                await a.AppendAsync($"tp-{round}-{s}", version, batch);
                version += batch.Count;
            }
        })));
        var rate = settings.Streams * settings.Batches * settings.BatchSize / sw.Elapsed.TotalSeconds;
        rates[a.Name].Add(rate);
        Log($"round {round}: {a.Name}: {rate:N0} events/s");
    }
}

// 2. Single-batch latency and round trips per append, one stream per store, nothing else of ours running. The stores
// take turns batch by batch (rotating who goes first), so a change in the machine's background load hits all alike.
var latency = new Dictionary<string, (double P50, double P99, double RoundTrips)>();
using (var trips = new RoundTrips())
{
    var samples = appenders.ToDictionary(a => a.Name, _ => new List<double>());
    var tripCounts = appenders.ToDictionary(a => a.Name, _ => new List<long>());
    var rows = appenders.ToDictionary(a => a.Name, _ => Rows.Make(settings.LatencySamples * settings.BatchSize));
    for (var i = 0; i < settings.LatencySamples; i++)
    {
        for (var k = 0; k < appenders.Length; k++)
        {
            var a = appenders[(i + k) % appenders.Length];
            var batch = new ArraySegment<BenchEvent>(rows[a.Name], i * settings.BatchSize, settings.BatchSize);
            trips.Take();
            trips.Enabled = true;
            var sw = Stopwatch.StartNew();
            await a.AppendAsync($"lat-{a.Key ?? "copy"}", (long)i * settings.BatchSize, batch);
            samples[a.Name].Add(sw.Elapsed.TotalMilliseconds);
            trips.Enabled = false;
            tripCounts[a.Name].Add(trips.Take());
        }
    }

    foreach (var a in appenders)
    {
        // The first append of a stream pays for warm-up (prepared plans, code generation): a latency sample like the
        // others, but left out of the round-trip count, which is about the steady state.
        latency[a.Name] = (Stats.Percentile(samples[a.Name], 0.5), Stats.Percentile(samples[a.Name], 0.99),
            Stats.Median(tripCounts[a.Name].Skip(1).Select(x => (double)x)));
        Log($"latency {a.Name}: p50 {latency[a.Name].P50:F2} ms, p99 {latency[a.Name].P99:F2} ms, {latency[a.Name].RoundTrips} round trips per append");
    }
}

var oursRate = Stats.Median(rates[appenders[1].Name]);
var copyRate = Stats.Median(rates[appenders[0].Name]);
report.AppendLine($"## Append: {settings.Streams} concurrent streams × {settings.Batches} batches × {settings.BatchSize} events, {settings.Rounds} round(s) (median)").AppendLine();
report.AppendLine("| store | events/s (median) | rounds | vs our store (ratio of medians; median of per-round ratios) | vs COPY | single-batch latency p50 / p99 | round trips per append |");
report.AppendLine("|---|---|---|---|---|---|---|");
foreach (var a in appenders)
{
    var m = Stats.Median(rates[a.Name]);
    var l = latency[a.Name];
    report.AppendLine(CultureInfo.InvariantCulture,
        $"| {a.Name} | {m:N0} | {string.Join(", ", rates[a.Name].Select(r => r.ToString("N0", CultureInfo.InvariantCulture)))} | {m / oursRate:P0}; {PerRound(rates[a.Name], rates[appenders[1].Name]):P0} | {m / copyRate:P0} | {l.P50:F2} ms / {l.P99:F2} ms | {l.RoundTrips:0.#} |");
}

report.AppendLine().AppendLine("COPY's \"round trips\" count the COPY protocol exchange (one command); latency samples: " +
    $"{settings.LatencySamples} sequential appends of {settings.BatchSize} events to one stream per store, the stores taking turns batch by batch.").AppendLine();

// --append-only stops here: more rounds of the throughput comparison alone, when the machine is too noisy for 5.
if (args.Contains("--append-only"))
{
    await WriteReportAsync();
    return 0;
}

// 3. Idempotency: the same batch (same event ids) appended twice, as a writer does after an ambiguous commit.
report.AppendLine("## Idempotency: the same batch appended twice (ambiguous commit retried with the same event ids)").AppendLine();
report.AppendLine("| store, retry style | second append returned | copies stored of each event |").AppendLine("|---|---|---|");
foreach (var row in await Idempotency.RunAsync(ds, ours, cs))
{
    report.AppendLine($"| {row.Variant} | {row.Outcome} | {row.Copies} |");
    Log($"idempotency {row.Variant}: {row.Outcome}; {row.Copies}");
}

report.AppendLine();

// 4. The global read under out-of-order and late commits.
report.AppendLine($"## Global read under out-of-order commits ({settings.GapTrials} trial(s) per reader)").AppendLine();
report.AppendLine(GapTrials.Describe).AppendLine();
report.AppendLine("| reader | events committed | events delivered | skipped (lost) | delivered twice | trials with a skip | catch-up after last commit, median / max: trials with a rolled-back writer | … trials without |");
report.AppendLine("|---|---|---|---|---|---|---|---|");
foreach (var result in await GapTrials.RunAllAsync(ds, cs, settings.GapTrials, Log))
{
    report.AppendLine(CultureInfo.InvariantCulture,
        $"| {result.Reader} | {result.Committed:N0} | {result.Delivered:N0} | {result.Skipped:N0} | {result.Duplicates:N0} | {result.TrialsWithSkip} / {result.Trials} | {Format(result.WithRollback)} | {Format(result.WithoutRollback)} |");
}

report.AppendLine();

// 5. Start-up and memory, each store alone in a fresh child process.
report.AppendLine($"## Start-up and memory per process ({settings.StartupRuns} child process(es) each, median)").AppendLine();
report.AppendLine("| store | process start → store ready | process start → first append committed | working set after 200 appends | managed heap after 200 appends |");
report.AppendLine("|---|---|---|---|---|");
foreach (var s in await StartupProbe.RunAsync(cs, settings.StartupRuns, Log))
{
    report.AppendLine(CultureInfo.InvariantCulture,
        $"| {s.Kind} | {s.ReadyMs:N0} ms | {s.FirstAppendMs:N0} ms | {s.WorkingSetMb:N0} MiB | {s.HeapMb:N0} MiB |");
}

await WriteReportAsync();
return 0;

async Task WriteReportAsync()
{
    var header = new StringBuilder()
        .AppendLine("# Event store comparison: Marten 9.58.0 vs our store")
        .AppendLine()
        .AppendLine(CultureInfo.InvariantCulture, $"Run {DateTimeOffset.UtcNow:yyyy-MM-dd HH:mm} UTC, {(quick ? "quick" : "full")} mode, {Environment.ProcessorCount} cores, " +
            $"load average at the end {LoadAverage()}, PostgreSQL {await ScalarAsync(ds, "SHOW server_version")} (private, fsync on), .NET {Environment.Version}.")
        .AppendLine();
    var text = header.Append(report).ToString();
    await File.WriteAllTextAsync(outPath, text);
    Console.WriteLine();
    Console.WriteLine(text);
    Log($"tables written to {outPath}");
}

int Arg(string name, int fallback)
{
    var i = Array.IndexOf(args, name);
    return i >= 0 && i + 1 < args.Length && int.TryParse(args[i + 1], CultureInfo.InvariantCulture, out var x) ? x : fallback;
}

string? ArgString(string name)
{
    var i = Array.IndexOf(args, name);
    return i >= 0 && i + 1 < args.Length ? args[i + 1] : null;
}

static string Format(CatchUp c) => c.Trials == 0
    ? "never (events skipped in every such trial)"
    : string.Create(CultureInfo.InvariantCulture, $"{c.Median:F2} s / {c.Max:F2} s ({c.Trials} complete)");

// The stores run one after another within a round, so a round's ratio compares them under the same background load.
static double PerRound(List<double> xs, List<double> baseline) => Stats.Median(xs.Zip(baseline, (x, b) => x / b));

static void Log(string message) => Console.WriteLine($"[{DateTime.Now:HH:mm:ss}] {message}");

static string LoadAverage() => File.Exists("/proc/loadavg") ? string.Join(' ', File.ReadAllText("/proc/loadavg").Split(' ').Take(3)) : "n/a";

static async Task<string> ScalarAsync(NpgsqlDataSource ds, string sql)
{
    await using var cmd = ds.CreateCommand(sql);
    return (await cmd.ExecuteScalarAsync())?.ToString() ?? "";
}

/// <summary>Sizes of the run.</summary>
internal sealed record Settings(int Streams, int Batches, int BatchSize, int Rounds, int LatencySamples, int GapTrials, int StartupRuns);

/// <summary>One way of appending a batch at an expected version.</summary>
internal sealed record Appender(string Name, string? Key, Func<string, long, IReadOnlyList<BenchEvent>, Task> Append)
{
    public Task AppendAsync(string stream, long expectedVersion, IReadOnlyList<BenchEvent> batch) => Append(stream, expectedVersion, batch);
}

/// <summary>Medians and percentiles.</summary>
internal static class Stats
{
    public static double Median(IEnumerable<double> xs) => Percentile(xs.ToList(), 0.5);

    public static double Percentile(List<double> xs, double p)
    {
        if (xs.Count == 0)
        {
            return double.NaN;
        }

        var sorted = xs.Order().ToList();
        return sorted[Math.Min(sorted.Count - 1, (int)(sorted.Count * p))];
    }
}
