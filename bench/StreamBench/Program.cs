using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Npgsql;
using Orleans.Streams;
using PumpFleet.EventStore;
using PumpFleet.EventStore.Local;
using PumpFleet.Streaming;

// Usage: dotnet run -c Release --project bench/StreamBench [-- --seconds 15 --rate 200 --streams 64]
//    or: dotnet run -c Release --project bench/StreamBench -- --throughput 40000 --rounds 3 (delivery throughput: Throughput.cs)
// For each mode (LISTEN/NOTIFY, then polling only as the baseline of the same run): a silo with the pumpfleet-log
// provider and one subscriber on the 16 partition streams (what a dashboard process holds); single-event appends at a
// paced rate over many streams; per event the time from the append's return (its commit) to the delivery; and the
// transactions the database served per second beyond the appends (the receivers' reads), idle and under load.
var seconds = Arg("--seconds", 15);
var throughput = Arg("--throughput", 0);
var rate = Arg("--rate", 200);
var streams = Arg("--streams", 64);

Console.WriteLine($"Stream benchmark: {rate} single-event appends/s over {streams} streams for {seconds} s per mode, durable PostgreSQL");
await using var pg = await PrivatePostgres.StartAsync(durable: true, progress: Console.WriteLine);
await using (var admin = NpgsqlDataSource.Create(pg.ConnectionString()))
{
    await using var create = admin.CreateCommand("CREATE DATABASE streambench");
    await create.ExecuteNonQueryAsync();
}

var cs = pg.ConnectionString("streambench");
await using var ds = NpgsqlDataSource.Create(cs);
await new SchemaMigrator(ds, [], NullLogger<SchemaMigrator>.Instance).MigrateAsync();
var store = new NpgsqlEventStore(ds);
if (throughput > 0)
{
    Console.WriteLine($"Throughput: bursts of {throughput:N0} events");
    return await PumpFleet.Bench.Stream.Throughput.RunAsync(cs, store, throughput, Arg("--rounds", 3), FreePort);
}

var versions = new long[streams];
var results = new List<string>();
// The receivers' read floor (Streaming:MinReadInterval): without one (each notified agent turn reads, as before
// 2026-11-30), with the default (or --min-read-ms), then polling only. Notifications coalesced within the floor cost
// latency only when a partition is read again within it.
var minReadMs = Arg("--min-read-ms", (int)new LogStreamOptions().MinReadInterval.TotalMilliseconds);
foreach (var (notifications, floorMs) in new[] { (true, 0), (true, minReadMs), (false, minReadMs) })
{
    results.Add(await RunModeAsync(notifications, floorMs));
}

Console.WriteLine();
Console.WriteLine("| mode | events | delivered | commit→delivery p50 | p99 | max | DB transactions/s idle (readers) | under load, beyond the appends |");
Console.WriteLine("|---|---|---|---|---|---|---|---|");
foreach (var line in results)
{
    Console.WriteLine(line);
}

return 0;

async Task<string> RunModeAsync(bool notifications, int floorMs)
{
    var name = (notifications ? "LISTEN/NOTIFY" : "polling only (1 s)") + $", read floor {floorMs} ms";
    var builder = Host.CreateApplicationBuilder();
    builder.Logging.SetMinimumLevel(LogLevel.Warning);
    builder.Configuration.AddInMemoryCollection(new Dictionary<string, string?>
    {
        ["Streaming:Notifications"] = notifications.ToString(),
        ["Streaming:MinReadInterval"] = TimeSpan.FromMilliseconds(floorMs).ToString("c", System.Globalization.CultureInfo.InvariantCulture),
    });
    builder.Services.AddPumpFleetEventStore(cs);
    builder.UseOrleans(silo =>
    {
        silo.UseLocalhostClustering(FreePort(), FreePort(), serviceId: "bench", clusterId: $"bench-{notifications}-{floorMs}");
        silo.AddPumpFleetLogStreams(builder.Configuration);
    });
    using var host = builder.Build();
    await host.StartAsync();

    var delivered = new ConcurrentDictionary<Guid, long>();
    var observer = new Recorder(delivered);
    var provider = host.Services.GetRequiredService<IClusterClient>().GetStreamProvider(LogStreams.ProviderName);
    var handles = new List<StreamSubscriptionHandle<CommittedEvent>>();
    foreach (var id in LogStreams.AllPartitions())
    {
        handles.Add(await provider.GetStream<CommittedEvent>(id).SubscribeAsync(observer));
    }

    // Warm-up: one event per stream, delivered, so every queue's receiver runs and has registered its streams.
    var warm = new List<Guid>();
    for (var s = 0; s < streams; s++)
    {
        warm.Add(await AppendOneAsync(s));
    }

    await WaitAsync(() => warm.All(delivered.ContainsKey), TimeSpan.FromSeconds(60));

    var idleBefore = await TransactionsAsync();
    var idleClock = Stopwatch.StartNew();
    await Task.Delay(TimeSpan.FromSeconds(5));
    var idleRate = (await TransactionsAsync() - idleBefore - 2) / idleClock.Elapsed.TotalSeconds;

    var committed = new ConcurrentDictionary<Guid, long>();
    var loadBefore = await TransactionsAsync();
    var loadClock = Stopwatch.StartNew();
    var total = rate * seconds;
    var writers = Enumerable.Range(0, 8).Select(w => Task.Run(async () =>
    {
        for (var i = w; i < total; i += 8)
        {
            // Paced: event i is due at i / rate seconds.
            var due = TimeSpan.FromSeconds((double)i / rate) - loadClock.Elapsed;
            if (due > TimeSpan.Zero)
            {
                await Task.Delay(due);
            }

            var id = await AppendOneAsync(i % streams);
            committed[id] = Stopwatch.GetTimestamp();
        }
    })).ToArray();
    await Task.WhenAll(writers);
    var loadSeconds = loadClock.Elapsed.TotalSeconds;
    var loadRate = (await TransactionsAsync() - loadBefore - total - 2) / loadSeconds;
    await WaitAsync(() => committed.Keys.All(delivered.ContainsKey), TimeSpan.FromSeconds(60));

    var latencies = committed.Select(kv => delivered.TryGetValue(kv.Key, out var at) ? Stopwatch.GetElapsedTime(kv.Value, at).TotalMilliseconds : double.NaN)
        .Where(x => !double.IsNaN(x)).Order().ToArray();
    foreach (var h in handles)
    {
        await h.UnsubscribeAsync();
    }

    await host.StopAsync();
    var line = $"| {name} | {committed.Count} | {latencies.Length} | {Pct(latencies, 0.5):0} ms | {Pct(latencies, 0.99):0} ms | {latencies.LastOrDefault():0} ms | {idleRate:0.0} | {loadRate:0.0} |";
    Console.WriteLine(line);
    return line;
}

async Task<Guid> AppendOneAsync(int s)
{
    var id = Guid.NewGuid();
    long expected;
    lock (versions)
    {
        expected = versions[s]++;
    }

    await store.AppendAsync($"BENCH{s:D4}", expected, [new EventToAppend(id, "bench.event", "{}", null, null, DateTimeOffset.UtcNow)]);
    return id;
}

async Task<long> TransactionsAsync()
{
    await using var cmd = ds.CreateCommand("SELECT xact_commit + xact_rollback FROM pg_stat_database WHERE datname = current_database()");
    // The statistics are published with a delay; ask for a fresh snapshot.
    await using (var clear = ds.CreateCommand("SELECT pg_stat_clear_snapshot()"))
    {
        await clear.ExecuteNonQueryAsync();
    }

    return (long)(await cmd.ExecuteScalarAsync())!;
}

static async Task WaitAsync(Func<bool> condition, TimeSpan timeout)
{
    var sw = Stopwatch.StartNew();
    while (!condition())
    {
        if (sw.Elapsed > timeout)
        {
            throw new TimeoutException("not all events were delivered");
        }

        await Task.Delay(20);
    }
}

static double Pct(double[] sorted, double p) => sorted.Length == 0 ? double.NaN : sorted[Math.Min(sorted.Length - 1, (int)Math.Ceiling(p * sorted.Length) - 1)];

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

/// <summary>Records when each event arrived (its own stream and its partition stream deliver it; the partition stream is subscribed).</summary>
internal sealed class Recorder(ConcurrentDictionary<Guid, long> delivered) : IAsyncObserver<CommittedEvent>
{
    public Task OnNextAsync(CommittedEvent item, StreamSequenceToken? token = null)
    {
        delivered.TryAdd(item.EventId, Stopwatch.GetTimestamp());
        return Task.CompletedTask;
    }

    public Task OnCompletedAsync() => Task.CompletedTask;

    public Task OnErrorAsync(Exception ex) => Task.CompletedTask;
}
