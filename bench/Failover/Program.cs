using System.Globalization;
using Microsoft.Extensions.Logging.Abstractions;
using Npgsql;
using PumpFleet.EventStore;
using PumpFleet.EventStore.Local;
using PumpFleet.Failover;
using PumpFleet.Clustering;

// Usage: dotnet run -c Release --project bench/Failover [-- --mode kill|terminate --pumps 30 --batch-size 5 --runs 1 --silo-dll path]
// Starts a private PostgreSQL, three real silo processes (AdoNet clustering), drives load from an Orleans client,
// stops one silo, and prints the accounting and recovery figures. scripts/failover-demo.sh wraps this.
// --scenario mqtt [--form short|long] [--runs 1] [--ingest-timeout 00:00:30]: the same cluster plus a gateway process and hubs over MQTT; a silo
// SIGKILL, a PostgreSQL restart and a gateway SIGKILL in one run (scripts/failover-mqtt.sh wraps this).
// --scenario streams: two silo processes, a client counting the pumpfleet-log partition streams, a writer; a silo
// SIGKILL and a PostgreSQL restart in one run; every committed event delivered (scripts/stream-faults.sh wraps this).
if (Arg("--scenario", "grains") == "mqtt")
{
    return await RunMqttAsync();
}

if (Arg("--scenario", "grains") == "streams")
{
    return await RunStreamsAsync();
}

var mode = Arg("--mode", "kill") == "terminate" ? StopMode.Terminate : StopMode.Kill;
var pumps = int.Parse(Arg("--pumps", "30"), CultureInfo.InvariantCulture);
var batchSize = int.Parse(Arg("--batch-size", "5"), CultureInfo.InvariantCulture);
var runs = int.Parse(Arg("--runs", "1"), CultureInfo.InvariantCulture);
var siloDll = Arg("--silo-dll", "");
siloDll = siloDll.Length > 0 ? siloDll : FailoverScenario.LocateSiloDll();

Console.WriteLine($"Failover: 3 silo processes ({siloDll}), {pumps} pumps x {batchSize}-event batches, stop by {mode}, {runs} run(s)");
await using var pg = await PrivatePostgres.StartAsync(durable: true, progress: Console.WriteLine);
var failures = 0;
for (var run = 1; run <= runs; run++)
{
    // A fresh database per run, so each run's accounting stands on its own.
    var cs = await CreateDatabaseAsync(pg, $"failover_{run}");
    var report = await FailoverScenario.RunAsync(new FailoverSettings
    {
        SiloDll = siloDll, ConnectionString = cs, Mode = mode, Pumps = pumps, BatchSize = batchSize, Progress = Console.WriteLine,
    });
    Console.WriteLine($"run {run}:\n{report}");
    var ok = report.AckedButMissing == 0 && report.RowsStored == report.DistinctStored && report.DistinctStored == report.EventsSent
             && report.VictimPumpsActiveElsewhere == report.VictimPumps && report.Rejections == 0;
    Console.WriteLine(ok ? "OK: every event stored exactly once, every pump of the stopped silo active elsewhere" : "FAILED");
    failures += ok ? 0 : 1;
}

return failures == 0 ? 0 : 1;

static async Task<string> CreateDatabaseAsync(PrivatePostgres pg, string name)
{
    await using (var admin = NpgsqlDataSource.Create(pg.ConnectionString()))
    await using (var cmd = admin.CreateCommand($"DROP DATABASE IF EXISTS {name}; CREATE DATABASE {name}"))
    {
        await cmd.ExecuteNonQueryAsync();
    }

    var cs = new NpgsqlConnectionStringBuilder(pg.ConnectionString()) { Database = name }.ConnectionString;
    await using var ds = NpgsqlDataSource.Create(cs);
    await new SchemaMigrator(ds, [new MigrationAssembly(typeof(ClusterHostingExtensions).Assembly)], NullLogger<SchemaMigrator>.Instance).MigrateAsync();
    return cs;
}

async Task<int> RunStreamsAsync()
{
    var dll = Arg("--silo-dll", "");
    dll = dll.Length > 0 ? dll : FailoverScenario.LocateSiloDll();
    Console.WriteLine($"Stream delivery under faults: 2 silo processes ({dll})");
    // The silo processes inherit this environment: the writer's events are not pump events, so the read-model
    // projections (which would refuse them) are off; the stream provider and its consumers are what is measured.
    Environment.SetEnvironmentVariable("Projections__Enabled", "false");
    await using var server = await PrivatePostgres.StartAsync(durable: true, progress: Console.WriteLine);
    var cs = await MqttFailoverScenario.CreateDatabaseAsync(server, "streamfaults");
    var report = await StreamFaultScenario.RunAsync(dll, server, cs, m => Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{DateTime.UtcNow:HH:mm:ss.fff} {m}")));
    Console.WriteLine(report);
    var ok = report.StreamsIncomplete == 0 && report.DeliveredDistinct == report.Committed;
    Console.WriteLine(ok ? "OK: every committed event delivered (deduped by stream version), no partition stalled" : "FAILED");
    return ok ? 0 : 1;
}

async Task<int> RunMqttAsync()
{
    var form = Arg("--form", "short");
    var runCount = int.Parse(Arg("--runs", "1"), CultureInfo.InvariantCulture);
    var silo = Arg("--silo-dll", "");
    silo = silo.Length > 0 ? silo : FailoverScenario.LocateSiloDll();
    var gatewayDll = Arg("--gateway-dll", "");
    gatewayDll = gatewayDll.Length > 0 ? gatewayDll : MqttFailoverScenario.LocateGatewayDll();
    var (hubs, acks) = form == "long" ? (30, 20) : (6, 3);
    var ingestTimeout = Arg("--ingest-timeout", "");
    var gatewaySettings = ingestTimeout.Length > 0 ? new Dictionary<string, string> { ["Gateway__Mqtt__IngestTimeout"] = ingestTimeout } : [];
    Console.WriteLine($"MQTT failover ({form}): 3 silos, a gateway process, {hubs} hubs x 2 pumps over MQTT; silo SIGKILL, PostgreSQL restart, gateway SIGKILL; {runCount} run(s)");
    await using var server = await PrivatePostgres.StartAsync(durable: true, progress: Console.WriteLine);
    var all = new List<MqttFaultReport>();
    for (var run = 1; run <= runCount; run++)
    {
        var cs = await MqttFailoverScenario.CreateDatabaseAsync(server, $"mqtt_failover_{run}");
        var reports = await MqttFailoverScenario.RunAsync(new MqttFailoverSettings
        {
            SiloDll = silo, GatewayDll = gatewayDll, Postgres = server, ConnectionString = cs, Hubs = hubs, AcksBetweenFaults = acks,
            GatewaySettings = gatewaySettings,
            Progress = Console.WriteLine,
        });
        all.AddRange(reports);
    }

    Console.WriteLine();
    Console.WriteLine("| fault | runs | outage median | first ack after it: median / max of hub medians | lost | duplicated | acked but missing |");
    Console.WriteLine("|---|---:|---:|---|---:|---:|---:|");
    foreach (var g in all.GroupBy(r => r.Fault))
    {
        var outage = MqttFaultReport.Median([.. g.Select(r => r.Outage)]);
        var medians = g.Select(r => r.RecoveryMedian).ToArray();
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"| {g.Key} | {g.Count()} | {outage.TotalSeconds:F2} s | {MqttFaultReport.Median(medians).TotalSeconds:F2} s / {g.Max(r => r.RecoveryMax).TotalSeconds:F2} s | {g.Sum(r => r.Lost)} | {g.Sum(r => r.Duplicated)} | {g.Sum(r => r.AckedButMissing)} |"));
    }

    var ok = all.All(r => r.ExactlyOnce);
    Console.WriteLine(ok ? "OK: after every fault each event sent is stored exactly once and nothing acknowledged is missing" : "FAILED");
    return ok ? 0 : 1;
}

string Arg(string name, string fallback)
{
    var i = Array.IndexOf(args, name);
    return i >= 0 && i + 1 < args.Length ? args[i + 1] : fallback;
}
