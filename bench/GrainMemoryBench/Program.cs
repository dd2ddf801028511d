using System.Diagnostics;
using System.Runtime.InteropServices;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Npgsql;
using Orleans.Configuration;
using PumpFleet.Contracts.Events;
using PumpFleet.Contracts.Grains;
using PumpFleet.EventStore;
using PumpFleet.EventStore.Benchmarks;
using PumpFleet.EventStore.Local;
using PumpFleet.Grains;
using PumpFleet.Grains.Pumps;

// Usage: dotnet run -c Release --project bench/GrainMemoryBench [-- --pumps 100000 --concurrency 64 --day 1 --gap 1 --idle 1 --pool 0 --hold 120 --one-trip 0 --snapshot-every 20]
// Each pump's strings (hub id, device, drug, phase, …) are fresh copies, as the gateway's JSON parser makes them for
// every message; --pool 0 turns off the shared copies the pump state keeps of them (Domain's ValuePool), the
// baseline of issue 15's memory work, measured in the same build.
// --day 1: a second batch with a day of hourly dose reports; --gap 1: that batch leaves one seq out, so every pump
// keeps its fold window open (issue 13: the events since the gap and a checkpoint, until the seq arrives).
// --idle 1: then deactivates every pump (as idle collection does) and reactivates each with a state read, timing both
// and the CPU they take. --one-trip 0: activations read the snapshot and the events after it in two queries (the
// way before issue 15's one-statement load), for a same-build baseline; --snapshot-every N: PumpGrainOptions.SnapshotEvery
// (200 as shipped; the bench's pumps have ~31 events, so a smaller N makes reactivation start from a snapshot).
// --hold N: keeps the silo up N seconds after the measurement, for a heap dump (dotnet-gcdump). Every run also reports the CPU per pump of the feed and the event table's bytes per pump
// (and, with --day, per pump-day: the growth from the day's batch).
var pumps = Arg("--pumps", 100_000);
var concurrency = Arg("--concurrency", 64);
var day = Arg("--day", 0) != 0;
var gap = Arg("--gap", 0) != 0;
var idle = Arg("--idle", 0) != 0;
PumpFleet.Domain.Pumps.ValuePool.Enabled = Arg("--pool", 1) != 0;
var oneTrip = Arg("--one-trip", 1) != 0;
var snapshotEvery = Arg("--snapshot-every", 200);
Console.WriteLine($"Value pool {(PumpFleet.Domain.Pumps.ValuePool.Enabled ? "on" : "off")}; activation load in {(oneTrip ? "one round trip" : "two round trips")}; snapshot every {snapshotEvery} events; load average {File.ReadAllText("/proc/loadavg").Trim()}");
Console.WriteLine($"Activating {pumps:N0} pump grains in one silo (each paired and fed a realistic first batch{(day ? ", then a day of reports" + (gap ? " with one seq missing (fold window open)" : " (no gap)") : "")})...");

await using var pg = await PrivatePostgres.StartAsync(durable: false, progress: Console.WriteLine);
var cs = pg.ConnectionString();
await using var eventsDb = NpgsqlDataSource.Create(cs);
await new SchemaMigrator(eventsDb, [], NullLogger<SchemaMigrator>.Instance).MigrateAsync();

var builder = Host.CreateApplicationBuilder();
builder.Logging.SetMinimumLevel(LogLevel.Warning);
builder.Services.AddPumpFleetEventStore(cs);
builder.Services.AddPumpFleetGrains();
builder.Services.Configure<PumpGrainOptions>(o =>
{
    o.LoadInOneRoundTrip = oneTrip;
    o.SnapshotEvery = snapshotEvery;
});
builder.UseOrleans(silo =>
{
    silo.UseLocalhostClustering(siloPort: 21111, gatewayPort: 31000);
    // Keep every activation alive for the measurement (the default idle collection age is 15 min anyway).
    silo.Configure<GrainCollectionOptions>(o => o.CollectionAge = TimeSpan.FromHours(2));
});
using var host = builder.Build();
await host.StartAsync();
var grains = host.Services.GetRequiredService<IGrainFactory>();

// Warm up the runtime and code paths so that one-time costs do not count per pump.
await FeedAsync(0, 200, first: true);
var (heap0, ws0) = Measure();
var bytes0 = await PartitioningBaseline.EventTableBytesAsync(eventsDb);
var cpu0 = Cpu();
var sw = Stopwatch.StartNew();
await FeedAsync(1_000_000, pumps, first: true);
var feedTime = sw.Elapsed;
var feedCpu = Cpu() - cpu0;
var bytes1 = await PartitioningBaseline.EventTableBytesAsync(eventsDb);
TimeSpan dayTime = default, dayCpu = default;
long bytes2 = bytes1;
if (day)
{
    (cpu0, sw) = (Cpu(), Stopwatch.StartNew());
    await FeedAsync(1_000_000, pumps, first: false);
    (dayTime, dayCpu) = (sw.Elapsed, Cpu() - cpu0);
    bytes2 = await PartitioningBaseline.EventTableBytesAsync(eventsDb);
}

var (heap1, ws1) = Measure();

Console.WriteLine();
Console.WriteLine($"| measure | {pumps:N0} active pumps{(day ? (gap ? ", fold window open" : ", no gap") : "")} |");
Console.WriteLine("|---|---|");
Console.WriteLine($"| managed heap growth per pump | {(heap1 - heap0) / (double)pumps:N0} bytes |");
Console.WriteLine($"| working set growth per pump | {(ws1 - ws0) / (double)pumps:N0} bytes |");
Console.WriteLine($"| activation + pair + first batch, total | {feedTime.TotalSeconds:N1} s ({pumps / feedTime.TotalSeconds:N0} pumps/s), silo CPU {feedCpu.TotalMilliseconds / pumps:N2} ms per pump |");
Console.WriteLine($"| event table + indexes after the first batch (7 events) | {(bytes1 - bytes0) / (double)pumps:N0} bytes per pump |");
if (day)
{
    Console.WriteLine($"| a day of hourly reports (24 events, one append) | {dayTime.TotalSeconds:N1} s ({pumps / dayTime.TotalSeconds:N0} pumps/s), silo CPU {dayCpu.TotalMilliseconds / pumps:N2} ms per pump |");
    Console.WriteLine($"| event table + indexes per pump-day (growth from the day's batch) | {(bytes2 - bytes1) / (double)pumps:N0} bytes |");
}

if (idle)
{
    // Idle deactivation as the collector does it (writes nothing: the state is in the log and the snapshot), then a
    // reactivation of every pump by a state read (snapshot + the events after it).
    var management = grains.GetGrain<IManagementGrain>(0);
    (cpu0, sw) = (Cpu(), Stopwatch.StartNew());
    await management.ForceActivationCollection(TimeSpan.Zero);
    while (await management.GetTotalActivationCount() > 100)
    {
        await Task.Delay(100);
    }

    var (deactTime, deactCpu) = (sw.Elapsed, Cpu() - cpu0);
    var (heapIdle, wsIdle) = Measure();
    (cpu0, sw) = (Cpu(), Stopwatch.StartNew());
    var next = -1;
    await Task.WhenAll(Enumerable.Range(0, concurrency).Select(_ => Task.Run(async () =>
    {
        int i;
        while ((i = Interlocked.Increment(ref next)) < pumps)
        {
            await grains.GetGrain<IPumpQueryGrain>($"MEM-{1_000_000 + i:D7}").GetStateAsync();
        }
    })));
    var (reactTime, reactCpu) = (sw.Elapsed, Cpu() - cpu0);
    var (heap2, _) = Measure();
    Console.WriteLine($"| deactivate all (ForceActivationCollection) | {deactTime.TotalSeconds:N1} s ({pumps / deactTime.TotalSeconds:N0} pumps/s), silo CPU {deactCpu.TotalMilliseconds / pumps:N2} ms per pump; heap then {(heapIdle - heap0) / (double)pumps:N0} bytes per pump, working set {(wsIdle - ws0) / (double)pumps:N0} |");
    Console.WriteLine($"| reactivate all by a state read | {reactTime.TotalSeconds:N1} s ({pumps / reactTime.TotalSeconds:N0} pumps/s), silo CPU {reactCpu.TotalMilliseconds / pumps:N2} ms per pump; heap growth per pump after {(heap2 - heap0) / (double)pumps:N0} bytes |");
}

var hold = Arg("--hold", 0);
if (hold > 0)
{
    // Time to take a heap dump of the live activations (dotnet-gcdump collect -p PID; docs/benchmarks.md).
    // Ctrl+C or SIGTERM ends the hold early and still stops the silo (and its private PostgreSQL) cleanly.
    Console.WriteLine($"Holding {hold} s for a heap dump (Ctrl+C or SIGTERM ends it): pid {Environment.ProcessId}");
    using var holdEnd = new CancellationTokenSource(TimeSpan.FromSeconds(hold));
    using var onTerm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, c => { c.Cancel = true; holdEnd.Cancel(); });
    using var onInt = PosixSignalRegistration.Create(PosixSignal.SIGINT, c => { c.Cancel = true; holdEnd.Cancel(); });
    try { await Task.Delay(Timeout.Infinite, holdEnd.Token); }
    catch (OperationCanceledException) { }
}

await host.StopAsync();
return;

static TimeSpan Cpu()
{
    using var p = Process.GetCurrentProcess();
    return p.TotalProcessorTime;
}

async Task FeedAsync(int offset, int count, bool first)
{
    var t0 = new DateTimeOffset(2026, 11, 1, 0, 0, 0, TimeSpan.Zero);
    // A fresh copy of a string, as every parsed message carries its own (the in-process grain call passes the
    // batch by reference, so literals would be shared by every pump and hide what a real fleet costs).
    static string F(string s) => new(s.AsSpan());
    var next = -1;
    var done = 0;
    var progress = Stopwatch.StartNew();
    await Task.WhenAll(Enumerable.Range(0, concurrency).Select(_ => Task.Run(async () =>
    {
        int i;
        while ((i = Interlocked.Increment(ref next)) < count)
        {
            var serial = $"MEM-{offset + i:D7}";
            var g = grains.GetGrain<IPumpIngestGrain>(serial);
            var device = new DeviceInfo { Model = F("SM2-40"), Firmware = F("4.2.1"), Lot = F("L2291"), ReservoirCapacityMl = 40 };
            var conc = new Concentration { Value = 25, Unit = F("mg/mL") };
            if (first)
            {
                await g.PairAsync("hub-" + ((offset + i) / 2), "bench");
                await g.IngestAsync(new IngestBatch
                {
                    HubId = "hub-" + ((offset + i) / 2), ReceivedAt = t0.AddHours(2), Device = device,
                    Events =
                    [
                        new TherapyPhaseChanged { Seq = 1, At = t0, Phase = F("implanted"), Indication = F("cancer-pain") },
                        new PrescriptionSet { Seq = 2, At = t0, Drug = F("morphine"), Concentration = conc, Mode = F("continuous"), RateMlPerDay = 0.5, LowReservoirAlarmMl = 4 },
                        new RefillPerformed { Seq = 3, At = t0, ExpectedResidualMl = 3, AspiratedResidualMl = 2.9, AddedMl = 38, Drug = F("morphine"), Concentration = new Concentration { Value = 25, Unit = F("mg/mL") } },
                        new DoseDelivered { Seq = 4, At = t0.AddHours(1), From = t0, VolumeMl = 0.0208, Kind = F("basal") },
                        new StatusReported { Seq = 5, At = t0.AddHours(1), BatteryPct = 87, BatteryV = 3.05, TempC = 36.8, Motor = F("running") },
                        new ReservoirLevelReported { Seq = 6, At = t0.AddHours(1), VolumeMl = 37.98, Source = F("estimated") },
                    ],
                });
            }
            else
            {
                // A day of hourly basal reports; with --gap the first seq of the day is missing (still in transit).
                var from = gap ? 8 : 7;
                await g.IngestAsync(new IngestBatch
                {
                    HubId = "hub-" + ((offset + i) / 2), ReceivedAt = t0.AddHours(26), Device = device,
                    Events = [.. Enumerable.Range(0, 24).Select(h => new DoseDelivered
                    {
                        Seq = from + h, At = t0.AddHours(2 + h), From = t0.AddHours(1 + h), VolumeMl = 0.0208, Kind = F("basal"),
                    })],
                });
            }

            var d = Interlocked.Increment(ref done);
            if (d % 10_000 == 0)
            {
                Console.WriteLine($"  {d:N0} pumps active ({d / progress.Elapsed.TotalSeconds:N0}/s)");
            }
        }
    })));
}

static (long Heap, long WorkingSet) Measure()
{
    for (var i = 0; i < 3; i++)
    {
        GC.Collect(2, GCCollectionMode.Forced, blocking: true, compacting: true);
        GC.WaitForPendingFinalizers();
    }

    using var p = Process.GetCurrentProcess();
    return (GC.GetTotalMemory(forceFullCollection: true), p.WorkingSet64);
}

int Arg(string name, int fallback)
{
    var i = Array.IndexOf(args, name);
    return i >= 0 && i + 1 < args.Length && int.TryParse(args[i + 1], out var x) ? x : fallback;
}
