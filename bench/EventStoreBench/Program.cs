using System.Diagnostics;
using Microsoft.Extensions.Logging.Abstractions;
using Npgsql;
using PumpFleet.Contracts.Events;
using PumpFleet.Contracts.Json;
using PumpFleet.EventStore;
using PumpFleet.EventStore.Benchmarks;
using PumpFleet.EventStore.Local;

// Usage: dotnet run -c Release --project bench/EventStoreBench [-- --streams 16 --batches 60 --batch-size 100 --rounds 3]
//        ... -- --partitioning [--months-ahead 12]: the time-partitioned event table against the single table (PartitioningBench)
//        ... -- --floor [--streams 256 --batch-size 10 --batches 40 --group 16 --writers 4]: COPY → the store's group append, step by step (FloorBench)
//        ... -- --floor --committer-pair 1 [--rounds 6]: only the store's committer, previous hash from the head (049) and from the log (043), alternating
if (args.Contains("--floor"))
{
    await PumpFleet.Bench.EventStore.FloorBench.RunAsync(Arg);
    return;
}

if (args.Contains("--partitioning"))
{
    await PumpFleet.Bench.EventStore.PartitioningBench.RunAsync(Arg);
    return;
}

var streams = Arg("--streams", 16);
var batches = Arg("--batches", 60);
var batchSize = Arg("--batch-size", 100);
var rounds = Arg("--rounds", 3);
var latencySamples = Arg("--latency-samples", 300);

Console.WriteLine($"Event store benchmark: {streams} streams x {batches} batches x {batchSize} events, {rounds} rounds, durable PostgreSQL (fsync on)");
await using var pg = await PrivatePostgres.StartAsync(durable: true, progress: Console.WriteLine);
await using var ds = NpgsqlDataSource.Create(pg.ConnectionString());
await new SchemaMigrator(ds, [], NullLogger<SchemaMigrator>.Instance).MigrateAsync();
await RawCopyBaseline.CreateTableAsync(ds);
// The unchained baseline writes no hash; the trigger (which would fill it in) is switched off for the run.
await UnchainedAppendBaseline.SwitchOffHashChainAsync(ds);

var store = new NpgsqlEventStore(ds);
var appendRates = new List<double>();
var unchainedRates = new List<double>();
var copyRates = new List<double>();
for (var round = 1; round <= rounds; round++)
{
    var rows = Enumerable.Range(0, streams).Select(s => MakeRows($"r{round}-s{s}", batches * batchSize)).ToArray();

    // The price of tamper evidence: the same appends with the append statement of before the hash chain (no hash),
    // on streams of their own. The two runs alternate their order from round to round so that neither always meets
    // a warmer cache.
    async Task<double> UnchainedAsync()
    {
        var t = Stopwatch.StartNew();
        await AppendAllAsync($"u{round}", rows);
        return streams * batches * batchSize / t.Elapsed.TotalSeconds;
    }

    var unchainedFirst = round % 2 == 0;
    var unchainedRate = unchainedFirst ? await UnchainedAsync() : 0;

    // Baseline: the same rows, one binary COPY per stream, all streams concurrently (the most favourable bulk path).
    var sw = Stopwatch.StartNew();
    await Task.WhenAll(rows.Select((r, s) => Task.Run(() => CopyAsync($"r{round}-s{s}", r))));
    var copyRate = streams * batches * batchSize / sw.Elapsed.TotalSeconds;

    // The store: one append (one round trip, one transaction) per batch, streams concurrently.
    sw.Restart();
    await AppendAllAsync($"r{round}", rows);
    var appendRate = streams * batches * batchSize / sw.Elapsed.TotalSeconds;
    if (!unchainedFirst)
    {
        unchainedRate = await UnchainedAsync();
    }

    copyRates.Add(copyRate);
    appendRates.Add(appendRate);
    unchainedRates.Add(unchainedRate);
    Console.WriteLine($"round {round}: COPY {copyRate:N0} events/s, append {appendRate:N0} events/s (without chain {unchainedRate:N0}, chained/unchained {appendRate / unchainedRate:P0}), append/COPY {appendRate / copyRate:P0}");
}

// Latency of a single batch append with no other load.
var latencies = new List<double>();
var one = MakeRows("latency", latencySamples * batchSize);
long v = 0;
for (var i = 0; i < latencySamples; i++)
{
    var sw = Stopwatch.StartNew();
    v = (await store.AppendAsync("latency", v, one.Skip(i * batchSize).Take(batchSize).ToList())).NextExpectedVersion;
    latencies.Add(sw.Elapsed.TotalMilliseconds);
}

latencies.Sort();
var unchainedLatencies = new List<double>();
v = 0;
for (var i = 0; i < latencySamples; i++)
{
    var sw = Stopwatch.StartNew();
    v = await UnchainedAppendBaseline.AppendAsync(ds, "latency-unchained", v, one.Skip(i * batchSize).Take(batchSize).Select(e => e with { EventId = Guid.NewGuid() }).ToList());
    unchainedLatencies.Add(sw.Elapsed.TotalMilliseconds);
}

unchainedLatencies.Sort();
double Median(List<double> xs) => xs.Order().ElementAt(xs.Count / 2);
Console.WriteLine();
Console.WriteLine("| measure | median of rounds |");
Console.WriteLine("|---|---|");
Console.WriteLine($"| raw COPY, {streams} concurrent streams | {Median(copyRates):N0} events/s |");
Console.WriteLine($"| store append, batches of {batchSize}, {streams} concurrent streams | {Median(appendRates):N0} events/s |");
Console.WriteLine($"| append without the hash chain (the statement of before), same load | {Median(unchainedRates):N0} events/s |");
Console.WriteLine($"| append / COPY | {Median(appendRates) / Median(copyRates):P0} |");
Console.WriteLine($"| chained / unchained append throughput (median of per-round ratios) | {Median([.. appendRates.Zip(unchainedRates, (a, u) => a / u)]):P0} |");
Console.WriteLine($"| single-batch append latency p50 / p99 ({batchSize} events, {latencySamples} samples) | {latencies[latencies.Count / 2]:F2} ms / {latencies[(int)(latencies.Count * 0.99)]:F2} ms |");
Console.WriteLine($"| the same without the hash chain | {unchainedLatencies[unchainedLatencies.Count / 2]:F2} ms / {unchainedLatencies[(int)(unchainedLatencies.Count * 0.99)]:F2} ms |");
return;

async Task AppendAllAsync(string prefix, List<EventToAppend>[] rows) =>
    await Task.WhenAll(rows.Select((r, s) => Task.Run(async () =>
    {
        long version = 0;
        for (var b = 0; b < batches; b++)
        {
            // Fresh event ids per prefix: the same rows go to the chained and the unchained streams.
            var chained = prefix.StartsWith('r');
            var batch = r.Skip(b * batchSize).Take(batchSize).Select(e => chained ? e : e with { EventId = Guid.NewGuid() }).ToList();
            version = chained
                ? (await store.AppendAsync($"{prefix}-s{s}", version, batch)).NextExpectedVersion
                : await UnchainedAppendBaseline.AppendAsync(ds, $"{prefix}-s{s}", version, batch);
        }
    })));

int Arg(string name, int fallback)
{
    var i = Array.IndexOf(args, name);
    return i >= 0 && i + 1 < args.Length && int.TryParse(args[i + 1], out var x) ? x : fallback;
}

static List<EventToAppend> MakeRows(string stream, int n)
{
    var t0 = new DateTimeOffset(2026, 11, 1, 0, 0, 0, TimeSpan.Zero);
    var list = new List<EventToAppend>(n);
    for (var i = 0; i < n; i++)
    {
        var e = new DoseDelivered { Seq = i + 1, At = t0.AddHours(i + 1), From = t0.AddHours(i), VolumeMl = 0.0208, Kind = "basal" };
        list.Add(new EventToAppend(Guid.NewGuid(), "dose.delivered", EventJson.Serialize(e), e.Seq, e.At, t0.AddHours(i + 1).AddSeconds(3),
            false, """{"hubId":"hub-0001"}"""));
    }

    return list;
}

Task CopyAsync(string stream, List<EventToAppend> rows) => RawCopyBaseline.CopyAsync(ds, stream, 0, rows);
