using System.Diagnostics;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Npgsql;
using Orleans.Configuration;
using PumpFleet.Contracts.Events;
using PumpFleet.Contracts.Grains;
using PumpFleet.EventStore;
using PumpFleet.EventStore.Local;
using PumpFleet.Grains;

// Usage: dotnet run -c Release --project bench/GrainMemoryBench [-- --pumps 100000 --concurrency 64 --day 1 --gap 1]
// --day 1: a second batch with a day of hourly dose reports; --gap 1: that batch leaves one seq out, so every pump
// keeps its fold window open (issue 13: the events since the gap and a checkpoint, until the seq arrives).
var pumps = Arg("--pumps", 100_000);
var concurrency = Arg("--concurrency", 64);
var day = Arg("--day", 0) != 0;
var gap = Arg("--gap", 0) != 0;
Console.WriteLine($"Activating {pumps:N0} pump grains in one silo (each paired and fed a realistic first batch{(day ? ", then a day of reports" + (gap ? " with one seq missing (fold window open)" : " (no gap)") : "")})...");

await using var pg = await PrivatePostgres.StartAsync(durable: false, progress: Console.WriteLine);
var cs = pg.ConnectionString();
await using (var ds = NpgsqlDataSource.Create(cs))
{
    await new SchemaMigrator(ds, [], NullLogger<SchemaMigrator>.Instance).MigrateAsync();
}

var builder = Host.CreateApplicationBuilder();
builder.Logging.SetMinimumLevel(LogLevel.Warning);
builder.Services.AddPumpFleetEventStore(cs);
builder.Services.AddPumpFleetGrains();
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
await FeedAsync(0, 200);
var (heap0, ws0) = Measure();
var sw = Stopwatch.StartNew();
await FeedAsync(1_000_000, pumps);
var feedTime = sw.Elapsed;
var (heap1, ws1) = Measure();

Console.WriteLine();
Console.WriteLine($"| measure | {pumps:N0} active pumps{(day ? (gap ? ", fold window open" : ", no gap") : "")} |");
Console.WriteLine("|---|---|");
Console.WriteLine($"| managed heap growth per pump | {(heap1 - heap0) / (double)pumps:N0} bytes |");
Console.WriteLine($"| working set growth per pump | {(ws1 - ws0) / (double)pumps:N0} bytes |");
Console.WriteLine($"| activation + pair + first batch, total | {feedTime.TotalSeconds:N1} s ({pumps / feedTime.TotalSeconds:N0} pumps/s) |");
await host.StopAsync();
return;

async Task FeedAsync(int offset, int count)
{
    var t0 = new DateTimeOffset(2026, 11, 1, 0, 0, 0, TimeSpan.Zero);
    var device = new DeviceInfo { Model = "SM2-40", Firmware = "4.2.1", Lot = "L2291", ReservoirCapacityMl = 40 };
    var conc = new Concentration { Value = 25, Unit = "mg/mL" };
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
            await g.PairAsync("hub-" + ((offset + i) / 2), "bench");
            await g.IngestAsync(new IngestBatch
            {
                HubId = "hub-" + ((offset + i) / 2), ReceivedAt = t0.AddHours(2), Device = device,
                Events =
                [
                    new TherapyPhaseChanged { Seq = 1, At = t0, Phase = "implanted", Indication = "cancer-pain" },
                    new PrescriptionSet { Seq = 2, At = t0, Drug = "morphine", Concentration = conc, Mode = "continuous", RateMlPerDay = 0.5, LowReservoirAlarmMl = 4 },
                    new RefillPerformed { Seq = 3, At = t0, ExpectedResidualMl = 3, AspiratedResidualMl = 2.9, AddedMl = 38, Drug = "morphine", Concentration = conc },
                    new DoseDelivered { Seq = 4, At = t0.AddHours(1), From = t0, VolumeMl = 0.0208, Kind = "basal" },
                    new StatusReported { Seq = 5, At = t0.AddHours(1), BatteryPct = 87, BatteryV = 3.05, TempC = 36.8, Motor = "running" },
                    new ReservoirLevelReported { Seq = 6, At = t0.AddHours(1), VolumeMl = 37.98, Source = "estimated" },
                ],
            });
            if (day)
            {
                // A day of hourly basal reports; with --gap the first seq of the day is missing (still in transit).
                var from = gap ? 8 : 7;
                await g.IngestAsync(new IngestBatch
                {
                    HubId = "hub-" + ((offset + i) / 2), ReceivedAt = t0.AddHours(26), Device = device,
                    Events = [.. Enumerable.Range(0, 24).Select(h => new DoseDelivered
                    {
                        Seq = from + h, At = t0.AddHours(2 + h), From = t0.AddHours(1 + h), VolumeMl = 0.0208, Kind = "basal",
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
