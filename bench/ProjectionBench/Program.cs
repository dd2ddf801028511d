using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Npgsql;
using PumpFleet.Contracts.Events;
using PumpFleet.Contracts.Json;
using PumpFleet.EventStore;
using PumpFleet.EventStore.Local;
using PumpFleet.EventStore.Log;
using PumpFleet.ProjectionBench;
using PumpFleet.Projections;
using PumpFleet.ReadModels;
using PumpFleet.Streaming;

// Usage: dotnet run -c Release --project bench/ProjectionBench [-- --pumps 2000 --events-per-pump 100 --runs 3]
//   [--no-stream] [--pumps-only] [--statement-stats] [--compare-pumps-shapes] [--compare-round-trips] [--compare-027-indexes]
//   [--four-workers] [--compare-known-rows] [--compare-reset]
//   [--compare-option KEY=VALUE]... [--only a,b] [--pg-setting name=value]... [--perf-fifo PATH [--perf-rows TEXT]]
// One log (pumps x (1 + events-per-pump) events, appended in interleaved rounds so pages mix many pumps), then per run,
// interleaved so load changes hit every reader alike: the raw partitioned read (the baseline), each read model's
// catch-up through the batch engine (one worker reading the 16 log partitions; pumps also with four workers against
// a four-way parallel raw read), and the pumps model as an Orleans stream consumer of pumpfleet-log (an implicitly
// subscribed grain per partition stream that applies what it was delivered in batches, deduplicated by stream version).
var pumps = Arg("--pumps", 2_000);
var eventsPerPump = Arg("--events-per-pump", 100);
var runs = Arg("--runs", 3);
// One page size for the raw read and the engine (default: the engine's default), so the baseline reads as the engine does.
var pageSize = Arg("--page-size", new ProjectionOptions().PageSize);
// --no-stream leaves out the stream consumer (quick runs while working on the batch engine).
var withStream = !args.Contains("--no-stream") && !args.Contains("--pumps-only");
// --pumps-only: the raw read, the in-memory fold and the pumps model (one worker) only (quick A/B runs, issue 14).
var pumpsOnly = args.Contains("--pumps-only");
// --compare-027-indexes: each run also catches the pumps model up on pf_pump_status as migrations 020–028 left it
// (exact-timestamp indexes on last_seen_at, forecast_empty_at and next_refill_due_at, fillfactor 100: no HOT updates),
// beside migration 060's (issue 14, h14p), alternating, so the schema's share is measured in the same minutes.
var compareIndexes = args.Contains("--compare-027-indexes");
// --compare-pumps-shapes: each run also catches the pumps model up as before h14q (Projections:Pumps:LockFreeReads and
// NarrowStatusUpdates off: rows read FOR UPDATE, every changed pump through the 36-column upsert), with the lock-free
// read only, and with the defaults plus GenericPlans on, beside the defaults, in an order rotated by one position each
// run, so each switch's share is measured in the same minutes (issue 14, h14q).
var comparePumpShapes = args.Contains("--compare-pumps-shapes");
// --compare-round-trips (issue 14, h14r): each run also catches the pumps model up as before h14r (Projections:
// ReadAheadEveryPage, LoadWithLock and CommitWithWrites off) and with each of the three off alone, beside the defaults,
// rotated by one position each run; without --pumps-only every other read model also runs as before h14r.
var compareRoundTrips = args.Contains("--compare-round-trips");
// --four-workers (with --pumps-only; issue 14, h14t): each run also reads the log with four parallel readers and catches
// the pumps model up with four workers, the pair the goal is furthest from on a 2-core machine.
var fourWorkers = args.Contains("--four-workers");
// --compare-known-rows (with --pumps-only; issue 14, h14t): each pumps catch-up also with Projections:Pumps:KnownRowWrites
// off (every flow and new status row through the upsert), alternating first and second by run, with one worker and,
// with --four-workers, four; both shapes on runners built alike (a provider and pool of their own).
var compareKnownRows = args.Contains("--compare-known-rows");
// --compare-option KEY=VALUE (repeatable, with --pumps-only; issue 14, h14x): each pumps catch-up also on a runner whose
// configuration has these keys (e.g. Projections:Pumps:LeanPageWrites=false), paired with the defaults as
// --compare-known-rows is (alternating first and second by run, both runners built alike and warmed up untimed).
var compareOptions = args.Select((a, i) => (a, i)).Where(x => x.a == "--compare-option" && x.i + 1 < args.Length).Select(x => args[x.i + 1]).ToList();
// --compare-reset (with --pumps-only; issue 15, h15x): each pumps catch-up also with EventStore:ResetPooledConnections
// on (Npgsql's session reset at every borrow, the behaviour before h15x), first and second alternating by run.
var compareReset = args.Contains("--compare-reset");
// --only a,b: only the rows whose name contains one of these (the raw reads always run: they are the baselines).
var only = Array.IndexOf(args, "--only") is var oi and >= 0 && oi + 1 < args.Length ? args[oi + 1].Split(',') : null;
var total = (long)pumps * (eventsPerPump + 1);
// --statement-stats: pg_stat_statements on; each pumps run prints PostgreSQL's time per statement per event, and after the
// runs one more cohorts catch-up (1 worker) is profiled (CohortProfile).
var statementStats = args.Contains("--statement-stats");
// --pg-setting name=value (repeatable; issue 14, h14x): more settings for the private server, e.g.
// pg_stat_statements.track_planning=on (the statements' planning time beside their execution time).
var pgSettings = args.Select((a, i) => (a, i)).Where(x => x.a == "--pg-setting" && x.i + 1 < args.Length).Select(x => args[x.i + 1]).ToList();
// --perf-fifo PATH --perf-rows TEXT (issue 14, h14x): a `perf record --control fifo:PATH -D -1` started beside the bench is
// enabled only while a row whose name contains TEXT is timed, so its profile holds those catch-ups and nothing else.
var perfFifo = Array.IndexOf(args, "--perf-fifo") is var pf and >= 0 && pf + 1 < args.Length ? args[pf + 1] : null;
var perfRows = Array.IndexOf(args, "--perf-rows") is var pr and >= 0 && pr + 1 < args.Length ? args[pr + 1] : "batch: pumps";

Console.WriteLine($"Projection benchmark: {pumps:N0} pumps x {eventsPerPump + 1} events = {total:N0} events, {runs} runs, pages of {pageSize}, durable PostgreSQL");
await using var pg = await PrivatePostgres.StartAsync(durable: true, progress: Console.WriteLine, statementStatistics: statementStats, settings: pgSettings);
await using (var admin = NpgsqlDataSource.Create(pg.ConnectionString()))
{
    await using var create = admin.CreateCommand("CREATE DATABASE projbench");
    await create.ExecuteNonQueryAsync();
}

var cs = pg.ConnectionString("projbench");
var builder = Host.CreateApplicationBuilder();
builder.Logging.SetMinimumLevel(LogLevel.Warning);
builder.Services.AddPumpFleetEventStore(cs);
builder.Services.AddPumpFleetReadModels();
builder.Services.Configure<ProjectionOptions>(o => o.PageSize = pageSize);
using var services = builder.Services.BuildServiceProvider();
await using (var ds0 = NpgsqlDataSource.Create(cs))
{
    await new SchemaMigrator(ds0, services.GetServices<MigrationAssembly>(), NullLogger<SchemaMigrator>.Instance).MigrateAsync();
}

var store = services.GetRequiredService<IEventStore>();
var partitions = services.GetRequiredService<ILogPartitionReader>();
var defaultRunner = services.GetRequiredService<ProjectionRunner>();
var rebuilder = services.GetRequiredService<ProjectionRebuilder>();
var ds = services.GetRequiredService<NpgsqlDataSource>();

// The same engine with each page's commit waiting for the WAL flush (the default does not wait): what that costs.
var syncBuilder = Host.CreateApplicationBuilder();
syncBuilder.Logging.SetMinimumLevel(LogLevel.Warning);
syncBuilder.Services.AddPumpFleetEventStore(cs);
syncBuilder.Services.AddPumpFleetReadModels();
syncBuilder.Services.Configure<ProjectionOptions>(o =>
{
    o.PageSize = pageSize;
    o.SynchronousCommit = true;
});
using var syncServices = syncBuilder.Services.BuildServiceProvider();
var syncRunner = syncServices.GetRequiredService<ProjectionRunner>();

// The cohorts model as before h14c (issue 14): every payload deserialised, members read with `= ANY … FOR UPDATE`
// (Projections:Cohorts:LeanPages=false), and, set up by its reset, the index and fillfactor that migration 064 removed.
var cohortsBeforeBuilder = Host.CreateApplicationBuilder();
cohortsBeforeBuilder.Logging.SetMinimumLevel(LogLevel.Warning);
cohortsBeforeBuilder.Services.AddPumpFleetEventStore(cs);
cohortsBeforeBuilder.Services.AddPumpFleetReadModels();
cohortsBeforeBuilder.Services.Configure<ProjectionOptions>(o => o.PageSize = pageSize);
cohortsBeforeBuilder.Services.Configure<CohortProjectionOptions>(o => o.LeanPages = false);
using var cohortsBeforeServices = cohortsBeforeBuilder.Services.BuildServiceProvider();
var cohortsBeforeRunner = cohortsBeforeServices.GetRequiredService<ProjectionRunner>();

// The pumps model as before h14q, and with only its first change (reads without the row lock).
var extraProviders = new List<ServiceProvider>();
ProjectionRunner PumpsRunner(bool lockFree, bool narrow, bool generic)
{
    var b = Host.CreateApplicationBuilder();
    b.Logging.SetMinimumLevel(LogLevel.Warning);
    b.Services.AddPumpFleetEventStore(cs);
    b.Services.AddPumpFleetReadModels();
    b.Services.Configure<ProjectionOptions>(o => o.PageSize = pageSize);
    b.Services.Configure<PumpProjectionOptions>(o =>
    {
        o.LockFreeReads = lockFree;
        o.NarrowStatusUpdates = narrow;
        o.GenericPlans = generic;
    });
    var provider = b.Services.BuildServiceProvider();
    extraProviders.Add(provider);
    return provider.GetRequiredService<ProjectionRunner>();
}

// The engine with its own switches set (issue 14, h14r: ReadAheadEveryPage, CommitWithWrites).
ProjectionRunner EngineRunner(bool readAheadEveryPage, bool loadWithLock, bool commitWithWrites)
{
    var b = Host.CreateApplicationBuilder();
    b.Logging.SetMinimumLevel(LogLevel.Warning);
    b.Services.AddPumpFleetEventStore(cs);
    b.Services.AddPumpFleetReadModels();
    b.Services.Configure<ProjectionOptions>(o =>
    {
        o.PageSize = pageSize;
        o.ReadAheadEveryPage = readAheadEveryPage;
        o.LoadWithLock = loadWithLock;
        o.CommitWithWrites = commitWithWrites;
    });
    var provider = b.Services.BuildServiceProvider();
    extraProviders.Add(provider);
    return provider.GetRequiredService<ProjectionRunner>();
}

var beforeH14rRunner = EngineRunner(readAheadEveryPage: false, loadWithLock: false, commitWithWrites: false);
// The defaults built the same way (a provider and connection pool of their own), for the other models' pairs.
var defaultsEngineRunner = EngineRunner(readAheadEveryPage: true, loadWithLock: true, commitWithWrites: true);
var noReadAheadRunner = EngineRunner(readAheadEveryPage: false, loadWithLock: true, commitWithWrites: true);
var noLoadWithLockRunner = EngineRunner(readAheadEveryPage: true, loadWithLock: false, commitWithWrites: true);
var noCommitWithWritesRunner = EngineRunner(readAheadEveryPage: true, loadWithLock: true, commitWithWrites: false);
var pumpsBeforeRunner = PumpsRunner(lockFree: false, narrow: false, generic: false);
var pumpsLockFreeRunner = PumpsRunner(lockFree: true, narrow: false, generic: false);
var pumpsGenericRunner = PumpsRunner(lockFree: true, narrow: true, generic: true);
// A runner with its own provider and pool, the engine's and the pumps model's options set on top of the page size.
ProjectionRunner ShapedRunner(Action<ProjectionOptions>? engine = null, Action<PumpProjectionOptions>? pumpsModel = null, IDictionary<string, string?>? settings = null)
{
    var b = Host.CreateApplicationBuilder();
    b.Configuration.AddInMemoryCollection(settings ?? new Dictionary<string, string?>());
    b.Logging.SetMinimumLevel(LogLevel.Warning);
    b.Services.AddPumpFleetEventStore(cs);
    b.Services.AddPumpFleetReadModels();
    b.Services.Configure<ProjectionOptions>(o =>
    {
        o.PageSize = pageSize;
        engine?.Invoke(o);
    });
    b.Services.Configure<PumpProjectionOptions>(o => pumpsModel?.Invoke(o));
    var provider = b.Services.BuildServiceProvider();
    extraProviders.Add(provider);
    return provider.GetRequiredService<ProjectionRunner>();
}

var knownRowsOffRunner = ShapedRunner(pumpsModel: o => o.KnownRowWrites = false);
// --compare-option: the keys bound over the defaults of both option sections (issue 14, h14x).
var optionsConfig = new ConfigurationBuilder().AddInMemoryCollection(compareOptions.Select(o => o.Split('=', 2)).Select(kv => new KeyValuePair<string, string?>(kv[0], kv[1]))).Build();
var optionRunner = compareOptions.Count == 0 ? null : ShapedRunner(
    engine: o => optionsConfig.GetSection(ProjectionOptions.SectionName).Bind(o),
    pumpsModel: o => optionsConfig.GetSection(PumpProjectionOptions.SectionName).Bind(o));
var optionLabel = string.Join(", ", compareOptions);
// Issue 15 (h15x): Npgsql's session reset at every borrow of a pooled connection, as before h15x.
var resetRunner = ShapedRunner(settings: new Dictionary<string, string?> { ["EventStore:ResetPooledConnections"] = "true" });

var sw = Stopwatch.StartNew();
await AppendEventsAsync(store, pumps, eventsPerPump);
Console.WriteLine($"appended {total:N0} events in {sw.Elapsed.TotalSeconds:F1} s");
await Exec("VACUUM ANALYZE");

// --compare-known-rows: each shape catches up once untimed first, so neither pays the first run's JIT in a timed pair
// (the first catch-up of a process spent up to twice the client CPU per event of the later ones; issue 14, h14t).
if (compareKnownRows || compareReset || optionRunner is not null)
{
    foreach (var warm in new[] { defaultsEngineRunner, optionRunner ?? (compareKnownRows ? knownRowsOffRunner : resetRunner) })
    {
        await ResetPumpsAsync(before: false);
        await BatchAsync(PumpProjection.ProjectionName, 4, warm);
    }
}

var rates = new Dictionary<string, List<double>>(StringComparer.Ordinal);
for (var run = 1; run <= runs; run++)
{
    await MeasureAsync("raw partitioned read, 1 reader", () => RawReadAsync([.. Enumerable.Range(0, LogPartitioning.Count)]));
    // Where the pumps model's time goes: the same read plus only the events' JSON, then plus the grain's fold (and the
    // status view the projection writes per changed pump and page), in memory, no writes.
    await MeasureAsync("raw read + event JSON, 1 reader", () => RawReadAsync([.. Enumerable.Range(0, LogPartitioning.Count)], FoldLevel.Deserialize));
    await MeasureAsync("raw read + event JSON + fold + view, 1 reader", () => RawReadAsync([.. Enumerable.Range(0, LogPartitioning.Count)], FoldLevel.Fold));
    if (compareIndexes && run % 2 == 1)
    {
        await MeasureAsync("batch: pumps, 1 worker, 027 indexes", () => BatchAsync(PumpProjection.ProjectionName, 1), () => ResetPumpsAsync(before: true));
    }

    if (comparePumpShapes)
    {
        // Each shape takes each position as often as the others over four runs (no shape always in the middle).
        (string Name, ProjectionRunner? Runner)[] shapes =
        [
            ("batch: pumps, 1 worker, before h14q", pumpsBeforeRunner),
            ("batch: pumps, 1 worker, lock-free reads only", pumpsLockFreeRunner),
            ("batch: pumps, 1 worker, generic plans", pumpsGenericRunner),
            ("batch: pumps, 1 worker", null),
        ];
        var turn = (run - 1) % shapes.Length;
        foreach (var (shapeName, runner) in shapes[turn..].Concat(shapes[..turn]))
        {
            await MeasureAsync(shapeName, () => BatchAsync(PumpProjection.ProjectionName, 1, runner), () => ResetPumpsAsync(before: false));
        }
    }
    else if (compareRoundTrips)
    {
        (string Name, ProjectionRunner? Runner)[] shapes =
        [
            ("batch: pumps, 1 worker, before h14r", beforeH14rRunner),
            ("batch: pumps, 1 worker, ReadAheadEveryPage off", noReadAheadRunner),
            ("batch: pumps, 1 worker, LoadWithLock off", noLoadWithLockRunner),
            ("batch: pumps, 1 worker, CommitWithWrites off", noCommitWithWritesRunner),
            // Built like the others (a provider and pool of its own): the shared default runner ran slower than an
            // equal runner built apart in the other models' pairs (docs/benchmarks.md, h14r).
            ("batch: pumps, 1 worker", defaultsEngineRunner),
        ];
        var turn = (run - 1) % shapes.Length;
        foreach (var (shapeName, runner) in shapes[turn..].Concat(shapes[..turn]))
        {
            await MeasureAsync(shapeName, () => BatchAsync(PumpProjection.ProjectionName, 1, runner), () => ResetPumpsAsync(before: false));
        }
    }
    else if (optionRunner is not null)
    {
        await PairAsync(1, optionLabel, optionRunner);
    }
    else if (compareKnownRows)
    {
        await KnownRowsPairAsync(1);
    }
    else if (compareReset)
    {
        await PairAsync(1, "connection reset on", resetRunner);
    }
    else
    {
        await MeasureAsync("batch: pumps, 1 worker", () => BatchAsync(PumpProjection.ProjectionName, 1), () => ResetPumpsAsync(before: false));
    }

    if (compareIndexes && run % 2 == 0)
    {
        await MeasureAsync("batch: pumps, 1 worker, 027 indexes", () => BatchAsync(PumpProjection.ProjectionName, 1), () => ResetPumpsAsync(before: true));
    }

    if (pumpsOnly && fourWorkers)
    {
        await MeasureAsync("raw partitioned read, 4 readers", async () =>
            (await Task.WhenAll(Enumerable.Range(0, 4).Select(w => Task.Run(() => RawReadAsync([.. Partitioning.LogPartitionsOf(w, 4)]))))).Sum());
        if (optionRunner is not null)
        {
            await PairAsync(4, optionLabel, optionRunner);
        }
        else if (compareKnownRows)
        {
            await KnownRowsPairAsync(4);
        }
        else if (compareReset)
        {
            await PairAsync(4, "connection reset on", resetRunner);
        }
        else
        {
            await MeasureAsync("batch: pumps, 4 workers", () => BatchAsync(PumpProjection.ProjectionName, 4, defaultsEngineRunner), () => ResetAsync(PumpProjection.ProjectionName));
        }
    }

    // The defaults and KnownRowWrites off, first and second alternating by run.
    Task KnownRowsPairAsync(int workers) => PairAsync(workers, "KnownRowWrites off", knownRowsOffRunner);

    // The defaults and one other shape, first and second alternating by run.
    async Task PairAsync(int workers, string otherName, ProjectionRunner other)
    {
        (string Name, ProjectionRunner Runner)[] pair =
        [
            ($"batch: pumps, {workers} worker{(workers == 1 ? "" : "s")}", defaultsEngineRunner),
            ($"batch: pumps, {workers} worker{(workers == 1 ? "" : "s")}, {otherName}", other),
        ];
        foreach (var (shapeName, runner) in run % 2 == 1 ? pair : pair.Reverse())
        {
            await MeasureAsync(shapeName, () => BatchAsync(PumpProjection.ProjectionName, workers, runner), () => ResetPumpsAsync(before: false));
        }
    }

    if (pumpsOnly)
    {
        Console.WriteLine($"run {run} done; load: {File.ReadAllText("/proc/loadavg").Trim()}");
        continue;
    }

    // With --compare-round-trips each other model also runs with the engine as before h14r, right before or right after
    // its run with the defaults (alternating by run, so neither always has the other's position).
    async Task OtherModelAsync(string label, string name, Func<Task> reset)
    {
        var beforeFirst = compareRoundTrips && run % 2 == 0;
        if (beforeFirst)
        {
            await MeasureAsync($"{label}, before h14r", () => BatchAsync(name, 1, beforeH14rRunner), reset);
        }

        await MeasureAsync(label, () => BatchAsync(name, 1, compareRoundTrips ? defaultsEngineRunner : null), reset);
        if (compareRoundTrips && !beforeFirst)
        {
            await MeasureAsync($"{label}, before h14r", () => BatchAsync(name, 1, beforeH14rRunner), reset);
        }
    }

    await MeasureAsync("batch: pumps, 1 worker, synchronous commit", () => BatchAsync(PumpProjection.ProjectionName, 1, syncRunner), () => ResetAsync(PumpProjection.ProjectionName));
    await OtherModelAsync("batch: anomalies, 1 worker", AnomalyProjection.ProjectionName, () => ResetAsync(AnomalyProjection.ProjectionName));
    await OtherModelAsync("batch: cohorts, 1 worker", CohortProjection.ProjectionName, () => ResetCohortsAsync(lean: true));
    await MeasureAsync("batch: cohorts, 1 worker, before h14c", () => BatchAsync(CohortProjection.ProjectionName, 1, cohortsBeforeRunner), () => ResetCohortsAsync(lean: false));
    await OtherModelAsync("batch: therapies, 1 worker", TherapyProjection.ProjectionName, () => ResetAsync(TherapyProjection.ProjectionName));
    await OtherModelAsync("batch: ingest, 1 worker", IngestProjection.ProjectionName, () => ResetAsync(IngestProjection.ProjectionName));
    await MeasureAsync("raw partitioned read, 4 readers", async () =>
        (await Task.WhenAll(Enumerable.Range(0, 4).Select(w => Task.Run(() => RawReadAsync([.. Partitioning.LogPartitionsOf(w, 4)]))))).Sum());
    await MeasureAsync("batch: pumps, 4 workers", () => BatchAsync(PumpProjection.ProjectionName, 4), () => ResetAsync(PumpProjection.ProjectionName));
    if (compareRoundTrips)
    {
        await MeasureAsync("batch: pumps, 4 workers, before h14r", () => BatchAsync(PumpProjection.ProjectionName, 4, beforeH14rRunner), () => ResetAsync(PumpProjection.ProjectionName));
        await MeasureAsync("batch: pumps, 4 workers, defaults built apart", () => BatchAsync(PumpProjection.ProjectionName, 4, defaultsEngineRunner), () => ResetAsync(PumpProjection.ProjectionName));
    }
    if (comparePumpShapes)
    {
        await MeasureAsync("batch: pumps, 4 workers, before h14q", () => BatchAsync(PumpProjection.ProjectionName, 4, pumpsBeforeRunner), () => ResetAsync(PumpProjection.ProjectionName));
    }

    await MeasureAsync("batch: cohorts, 4 workers", () => BatchAsync(CohortProjection.ProjectionName, 4), () => ResetCohortsAsync(lean: true));
    await MeasureAsync("batch: cohorts, 4 workers, before h14c", () => BatchAsync(CohortProjection.ProjectionName, 4, cohortsBeforeRunner), () => ResetCohortsAsync(lean: false));
    await MeasureAsync("batch: anomalies, 4 workers", () => BatchAsync(AnomalyProjection.ProjectionName, 4), () => ResetAsync(AnomalyProjection.ProjectionName));
    if (withStream)
    {
        await MeasureAsync("stream consumer: pumps, 16 partition grains", StreamAsync, ResetStreamAsync);
    }

    Console.WriteLine($"run {run} done; load: {File.ReadAllText("/proc/loadavg").Trim()}");
}

Console.WriteLine();
Console.WriteLine("| reader | median events/s | runs (events/s) | share of the raw read of the same parallelism |");
Console.WriteLine("|---|---|---|---|");
var raw1 = Median(rates["raw partitioned read, 1 reader"]);
var raw4 = pumpsOnly && !fourWorkers ? raw1 : Median(rates["raw partitioned read, 4 readers"]);
foreach (var (name, list) in rates)
{
    var baseline = name.Contains("4 ", StringComparison.Ordinal) || name.StartsWith("stream", StringComparison.Ordinal) ? raw4 : raw1;
    Console.WriteLine($"| {name} | {Median(list):N0} | {string.Join(" / ", list.Select(r => r.ToString("N0", System.Globalization.CultureInfo.InvariantCulture)))} | {Median(list) / baseline:P0} |");
}

// What the pumps read model stores per pump (the last pumps run's tables; migration 027 keeps the folded state apart).
await using (var sizes = ds.CreateCommand("""
    SELECT t, pg_table_size(t::regclass), pg_indexes_size(t::regclass), (SELECT count(*) FROM pf_pump_status)
    FROM unnest(ARRAY['pf_pump_status', 'pf_pump_fold']) AS t WHERE to_regclass(t) IS NOT NULL
    """))
await using (var r = await sizes.ExecuteReaderAsync())
{
    while (await r.ReadAsync())
    {
        var n = Math.Max(1, r.GetInt64(3));
        Console.WriteLine($"{r.GetString(0)}: {r.GetInt64(1) / n:N0} bytes per pump in the table (TOAST included), {r.GetInt64(2) / n:N0} in its indexes ({n:N0} pumps)");
    }
}

// --statement-stats (not with --pumps-only): the cohorts catch-up profiled, as before h14c and now (CohortProfile).
foreach (var lean in statementStats && !pumpsOnly ? new[] { false, true } : [])
{
    await ResetCohortsAsync(lean);
    await QuiesceAsync();
    var profile = await CohortProfile.StartAsync(ds);
    var applied = await BatchAsync(CohortProjection.ProjectionName, 1, lean ? null : cohortsBeforeRunner);
    Console.WriteLine(lean ? "Profile: cohorts now" : "Profile: cohorts before h14c");
    await QuiesceAsync();
    // Pages: per log partition its events over the page size (the progress rows count the events of each).
    await using var pageCount = ds.CreateCommand("SELECT sum(ceil(events_processed / $1::float8))::bigint FROM pf_projection_progress WHERE projection = $2");
    pageCount.Parameters.Add(new() { Value = pageSize });
    pageCount.Parameters.Add(new() { Value = CohortProjection.ProjectionName });
    await profile.PrintAsync(ds, applied, (long)(await pageCount.ExecuteScalarAsync())!);
}

foreach (var provider in extraProviders)
{
    await provider.DisposeAsync();
}

if (withStream)
{
    Console.WriteLine($"(stream consumer against the 4-reader raw read; against the 1-reader raw read: {Median(rates["stream consumer: pumps, 16 partition grains"]) / raw1:P0})");
}

return 0;

async Task MeasureAsync(string name, Func<Task<long>> body, Func<Task>? prepare = null)
{
    if (only is not null && !name.StartsWith("raw partitioned", StringComparison.Ordinal) && !only.Any(o => name.Contains(o, StringComparison.Ordinal)))
    {
        return;
    }

    if (prepare is not null)
    {
        await prepare();
    }

    var writes = name.StartsWith("batch: pumps", StringComparison.Ordinal) ? await WriteStats.StartAsync(ds, statementStats) : null;
    var profiled = perfFifo is not null && name.Contains(perfRows, StringComparison.Ordinal);
    if (profiled)
    {
        await PerfControlAsync("enable");
    }

    var cpu = await CpuMeter.StartAsync(ds);
    var allocated = GC.GetTotalAllocatedBytes(precise: false);
    int[] collections = [GC.CollectionCount(0), GC.CollectionCount(1), GC.CollectionCount(2)];
    var t = Stopwatch.StartNew();
    var events = await body();
    var rate = events / t.Elapsed.TotalSeconds;
    var cpuLine = cpu.PerEvent(events);
    // The process's managed allocations and collections over the catch-up (issue 14, h14x): every thread of the bench,
    // which is the catch-up's alone while it runs.
    var allocLine = string.Create(System.Globalization.CultureInfo.InvariantCulture,
        $"allocated {(GC.GetTotalAllocatedBytes(precise: false) - allocated) / (double)events:F0} B/event; GCs gen0 {GC.CollectionCount(0) - collections[0]}, gen1 {GC.CollectionCount(1) - collections[1]}, gen2 {GC.CollectionCount(2) - collections[2]}");
    if (profiled)
    {
        await PerfControlAsync("disable");
    }

    if (events != total)
    {
        throw new InvalidOperationException($"{name}: {events:N0} events, expected {total:N0}");
    }

    if (name.Contains("pumps", StringComparison.Ordinal))
    {
        // Both designs must leave the same read model: a row per pump at its last version (nothing skipped or doubled).
        await using var cmd = ds.CreateCommand("SELECT count(*), coalesce(sum(version), 0)::bigint FROM pf_pump_status");
        await using var r = await cmd.ExecuteReaderAsync();
        await r.ReadAsync();
        if (r.GetInt64(0) != pumps || r.GetInt64(1) != total)
        {
            throw new InvalidOperationException($"{name}: {r.GetInt64(0)} pump rows with {r.GetInt64(1)} versions, expected {pumps} and {total}");
        }
    }

    (rates.TryGetValue(name, out var l) ? l : rates[name] = []).Add(rate);
    Console.WriteLine($"{name}: {rate:N0} events/s ({t.Elapsed.TotalSeconds:F1} s)");
    Console.WriteLine($"  {cpuLine}");
    Console.WriteLine($"  {allocLine}");
    if (writes is not null)
    {
        await writes.PrintAsync(ds, name, events, statementStats);
    }
}

// One command to perf's control FIFO (a pipe: opened for writing, not appended to, which would seek).
async Task PerfControlAsync(string command)
{
    await using var fifo = new FileStream(perfFifo!, FileMode.Open, FileAccess.Write, FileShare.ReadWrite, 1, useAsync: false);
    await fifo.WriteAsync(System.Text.Encoding.ASCII.GetBytes(command + "\n"));
}

async Task<long> RawReadAsync(int[] logPartitions, FoldLevel level = FoldLevel.None)
{
    var read = 0L;
    var states = new Dictionary<string, PumpFleet.Domain.Pumps.PumpState>(StringComparer.Ordinal);
    foreach (var q in logPartitions)
    {
        var checkpoint = GlobalCheckpoint.Start;
        while (true)
        {
            var page = await partitions.ReadPartitionAsync(q, checkpoint, pageSize);
            if (page.Events.Count == 0)
            {
                break;
            }

            if (level != FoldLevel.None)
            {
                var changed = new HashSet<string>(StringComparer.Ordinal);
                foreach (var e in page.Events)
                {
                    var pumpEvent = EventJson.Deserialize(e.Type, e.Data);
                    if (level == FoldLevel.Fold)
                    {
                        if (!states.TryGetValue(e.StreamId, out var state))
                        {
                            states[e.StreamId] = state = new PumpFleet.Domain.Pumps.PumpState { Serial = e.StreamId };
                        }

                        state.Apply(pumpEvent, new PumpFleet.Domain.Pumps.EventEnvelope(e.Version, e.Seq, e.ReceivedAt, e.ClockSuspect));
                        changed.Add(e.StreamId);
                    }
                }

                foreach (var serial in changed)
                {
                    GC.KeepAlive(states[serial].ToView());
                }
            }

            read += page.Events.Count;
            checkpoint = page.Next;
        }
    }

    return read;
}

// Not timed: the projection emptied (a rebuild) and its tables vacuumed.
async Task ResetAsync(string name)
{
    await rebuilder.RebuildAsync(name);
    await Exec("VACUUM ANALYZE pf_pump_status, pf_pump_fold, pf_daily_flow, pf_alarm_log, pf_anomalies, pf_cohort_members, pf_cohort_stats");
}

// Not timed: the pumps read model emptied, on migration 060's schema or (before) with 020–028's indexes and fillfactor.
async Task ResetPumpsAsync(bool before)
{
    await ResetAsync(PumpProjection.ProjectionName);
    await Exec(before
        ? """
          ALTER TABLE pf_pump_status SET (fillfactor = 100);
          ALTER TABLE pf_daily_flow SET (fillfactor = 100);
          CREATE INDEX IF NOT EXISTS pf_pump_status_last_seen ON pf_pump_status (last_seen_at);
          CREATE INDEX IF NOT EXISTS pf_pump_status_forecast ON pf_pump_status (forecast_empty_at);
          CREATE INDEX IF NOT EXISTS pf_pump_status_refill ON pf_pump_status (next_refill_due_at);
          DROP INDEX IF EXISTS pf_pump_status_forecast_day, pf_pump_status_refill_day;
          """
        : """
          ALTER TABLE pf_pump_status SET (fillfactor = 70);
          ALTER TABLE pf_daily_flow SET (fillfactor = 80);
          DROP INDEX IF EXISTS pf_pump_status_last_seen, pf_pump_status_forecast, pf_pump_status_refill;
          CREATE INDEX IF NOT EXISTS pf_pump_status_forecast_day ON pf_pump_status (forecast_empty_day);
          CREATE INDEX IF NOT EXISTS pf_pump_status_refill_day ON pf_pump_status (refill_due_day);
          """);
}

// A backend reports its table counters when idle, up to seconds late, and when it exits: the pool's connections are
// closed and their backends waited for, so the profile's counters hold all that was done before.
async Task QuiesceAsync()
{
    foreach (var pool in new[] { ds, cohortsBeforeServices.GetRequiredService<NpgsqlDataSource>(), syncServices.GetRequiredService<NpgsqlDataSource>() })
    {
        pool.Clear();
    }

    await using var own = NpgsqlDataSource.Create(cs);
    await using var conn = await own.OpenConnectionAsync();
    var waited = Stopwatch.StartNew();
    while (waited.Elapsed < TimeSpan.FromSeconds(30))
    {
        await using var others = new NpgsqlCommand(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid() AND backend_type = 'client backend'", conn);
        if ((long)(await others.ExecuteScalarAsync())! == 0)
        {
            return;
        }

        await Task.Delay(50);
    }
}

// Not timed: the cohorts model emptied, its members table as migration 064 leaves it (lean) or as before it.
async Task ResetCohortsAsync(bool lean)
{
    await Exec(lean
        ? "DROP INDEX IF EXISTS pf_cohort_members_cohort; ALTER TABLE pf_cohort_members SET (fillfactor = 50)"
        : "CREATE INDEX IF NOT EXISTS pf_cohort_members_cohort ON pf_cohort_members (model, firmware, lot); ALTER TABLE pf_cohort_members SET (fillfactor = 100)");
    await ResetAsync(CohortProjection.ProjectionName);
}

// Not timed: the pumps read model emptied and the stream queues' checkpoints back at the start of the log.
async Task ResetStreamAsync()
{
    await ResetAsync(PumpProjection.ProjectionName);
    foreach (var q in Enumerable.Range(0, LogPartitioning.Count))
    {
        await store.SaveCheckpointAsync($"stream:{LogStreams.ProviderName}:{q}of{LogPartitioning.Count}", GlobalCheckpoint.Start);
    }

    PumpsStreamConsumer.Reset();
}

// The projection from empty, caught up by `workers` runners in parallel, each its own log partitions.
async Task<long> BatchAsync(string name, int workers, ProjectionRunner? with = null)
{
    var runner = with ?? defaultRunner;
    var before = runner.Stages.Snapshot();
    await Task.WhenAll(Enumerable.Range(0, workers).Select(w => Task.Run(async () =>
    {
        while (!await runner.IsCaughtUpAsync(name, w, workers, CancellationToken.None))
        {
            await runner.CatchUpAsync(name, w, workers, TimeSpan.FromHours(1), CancellationToken.None);
        }
    })));
    // Where a page's time went (issue 14, h14r): summed over the workers, per committed page.
    var spent = runner.Stages.Snapshot().Since(before);
    Console.WriteLine($"  {name}, {workers} worker(s): {spent.Pages} pages, ms per page: {spent.PerPage()}");
    return await AppliedAsync(name);
}

// The pumps read model fed by pumpfleet-log: a silo whose 16 queues start at the beginning of the log, and an
// implicitly subscribed grain per partition stream that applies its deliveries in batches (PumpsStreamConsumer).
// Timed from the silo's start (its start-up, about a second here, is part of the figure).
async Task<long> StreamAsync()
{
    var hostBuilder = Host.CreateApplicationBuilder();
    hostBuilder.Logging.SetMinimumLevel(LogLevel.Warning);
    hostBuilder.Services.AddPumpFleetEventStore(cs);
    hostBuilder.Services.AddPumpFleetReadModels();
    hostBuilder.UseOrleans(silo =>
    {
        silo.UseLocalhostClustering(FreePort(), FreePort(), serviceId: "projbench", clusterId: $"projbench-{Guid.NewGuid():N}");
        silo.AddPumpFleetLogStreams(hostBuilder.Configuration);
    });
    using var host = hostBuilder.Build();
    await host.StartAsync();
    var t = Stopwatch.StartNew();
    while (PumpsStreamConsumer.Applied < total && t.Elapsed < TimeSpan.FromMinutes(20))
    {
        await Task.Delay(20);
    }

    await host.StopAsync();
    return PumpsStreamConsumer.Applied;
}

// Events the projection has applied, by its progress rows (written in each page's transaction).
async Task<long> AppliedAsync(string name)
{
    await using var cmd = ds.CreateCommand("SELECT coalesce(sum(events_processed), 0)::bigint FROM pf_projection_progress WHERE projection = $1");
    cmd.Parameters.Add(new() { Value = name });
    return (long)(await cmd.ExecuteScalarAsync())!;
}

async Task Exec(string sql)
{
    await using var cmd = ds.CreateCommand(sql);
    await cmd.ExecuteNonQueryAsync();
}

static double Median(List<double> xs)
{
    var s = xs.Order().ToArray();
    return s.Length % 2 == 1 ? s[s.Length / 2] : (s[(s.Length / 2) - 1] + s[s.Length / 2]) / 2;
}

// Rounds of 10 events per pump, so pages mix many pumps as live traffic does (as bench/DashboardBench).
static async Task AppendEventsAsync(IEventStore store, int pumps, int perPump)
{
    var start = new DateTimeOffset(2026, 11, 1, 0, 0, 0, TimeSpan.Zero);
    var versions = new long[pumps];
    var device = new DeviceInfo { Model = "SM2-40", Firmware = "4.2.1", Lot = "L2291", ReservoirCapacityMl = 40 };
    for (var p = 0; p < pumps; p++)
    {
        var e = new DeviceIdentified { At = start, Device = device };
        await store.AppendAsync($"E{p:D5}", 0, [new EventToAppend(Guid.NewGuid(), "device.identified", EventJson.Serialize(e), null, null, start)]);
        versions[p] = 1;
    }

    for (var round = 0; round < perPump / 10; round++)
    {
        await Parallel.ForAsync(0, pumps, new ParallelOptions { MaxDegreeOfParallelism = 8 }, async (p, ct) =>
        {
            var rows = new List<EventToAppend>(10);
            for (var k = 0; k < 10; k++)
            {
                var seq = (round * 10) + k + 1;
                var at = start.AddHours(seq);
                DeviceEvent e = seq == 1
                    ? new PrescriptionSet { Seq = 1, At = at, Drug = "baclofen", Concentration = new Concentration { Value = 2000, Unit = "mcg/mL" }, Mode = "continuous", RateMlPerDay = 0.5 }
                    : seq % 25 == 0
                        ? new AlarmRaised { Seq = seq, At = at, Code = "LOW_RESERVOIR", Severity = "non-critical" }
                        : new DoseDelivered { Seq = seq, At = at, From = at.AddHours(-1), VolumeMl = 0.5 / 24, Kind = "basal" };
                rows.Add(new EventToAppend(Guid.NewGuid(), EventTypes.NameOf(e), EventJson.Serialize(e), seq, at, at));
            }

            await store.AppendAsync($"E{p:D5}", versions[p], rows, ct);
            versions[p] += rows.Count;
        });
    }
}

static int FreePort()
{
    using var l = new TcpListener(IPAddress.Loopback, 0);
    l.Start();
    return ((IPEndPoint)l.LocalEndpoint).Port;
}

int Arg(string name, int fallback)
{
    var i = Array.IndexOf(args, name);
    return i >= 0 && i + 1 < args.Length ? int.Parse(args[i + 1], System.Globalization.CultureInfo.InvariantCulture) : fallback;
}

internal enum FoldLevel
{
    None,
    Deserialize,
    Fold,
}
