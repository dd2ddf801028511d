using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Npgsql;
using NpgsqlTypes;
using Orleans.Dashboard;
using PumpFleet.Contracts.Events;
using PumpFleet.Contracts.Json;
using PumpFleet.Dashboard.Hosting;
using PumpFleet.EventStore;
using PumpFleet.EventStore.Local;
using PumpFleet.Grains;
using PumpFleet.Projections;
using PumpFleet.ReadModels;

// Usage: dotnet run -c Release --project bench/DashboardBench [-- --pumps 100000 --requests 400 --event-pumps 2000 --events-per-pump 100]
var pumps = Arg("--pumps", 100_000);
var requests = Arg("--requests", 400);
var eventPumps = Arg("--event-pumps", 2_000);
var eventsPerPump = Arg("--events-per-pump", 100);

Console.WriteLine($"Dashboard benchmark: {pumps:N0} pumps in pf_pump_status, {requests} requests per query shape; " +
                  $"projection catch-up over {eventPumps:N0} pumps x {eventsPerPump} events");
await using var pg = await PrivatePostgres.StartAsync(durable: true, progress: Console.WriteLine);
var cs = pg.ConnectionString();

var builder = WebApplication.CreateBuilder(new WebApplicationOptions { EnvironmentName = "Production" });
builder.WebHost.UseUrls("http://127.0.0.1:0");
builder.Logging.SetMinimumLevel(LogLevel.Warning);
builder.Configuration.AddInMemoryCollection(new Dictionary<string, string?>
{
    ["ConnectionStrings:PumpFleet"] = cs,
    ["Dashboard:Auth:Mode"] = "Local",
    // The bench drives the projections itself; the cluster must not run them concurrently.
    ["Projections:Enabled"] = "false",
});
builder.Services.AddPumpFleetEventStore(cs);
builder.Services.AddPumpFleetGrains();
builder.UseOrleans(silo => silo.UseLocalhostClustering(FreePort(), FreePort()).AddPumpFleetProjections().AddDashboard());
builder.AddPumpFleetDashboard();
await using var app = builder.Build();
app.MapPumpFleetDashboard();
await app.Services.GetRequiredService<SchemaMigrator>().MigrateAsync();
await app.StartAsync();
var baseAddress = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
var ds = app.Services.GetRequiredService<NpgsqlDataSource>();

// 1. Fleet API over 100,000 pumps (rows written directly with binary COPY, as the projection would have left them).
var sw = Stopwatch.StartNew();
await SeedStatusAsync(ds, pumps);
await Exec(ds, "ANALYZE pf_pump_status");
Console.WriteLine($"seeded {pumps:N0} pump rows in {sw.Elapsed.TotalSeconds:F1} s");
using var http = new HttpClient { BaseAddress = new Uri(baseAddress) };
var shapes = new (string Name, Func<int, string> Path)[]
{
    ("default (attention first, page 1 of 50)", _ => "/api/pumps"),
    ("random page, 50 per page", i => $"/api/pumps?page={1 + (i * 7919 % (pumps / 50))}&pageSize=50"),
    ("status=critical", _ => "/api/pumps?status=critical&pageSize=50"),
    ("model+firmware filter, sort lastSeenAt desc", _ => "/api/pumps?model=SM2-40&firmware=4.3.0&sort=lastSeenAt&dir=desc"),
    ("serial prefix search", i => $"/api/pumps?q=P{i % 10}{i % 7}"),
    ("page size 500", _ => "/api/pumps?pageSize=500"),
};
var results = new List<(string, double, double, double)>();
foreach (var (name, path) in shapes)
{
    for (var i = 0; i < 20; i++)
    {
        (await http.GetAsync(path(i))).EnsureSuccessStatusCode();
    }

    var samples = new List<double>(requests);
    for (var i = 0; i < requests; i++)
    {
        var t = Stopwatch.StartNew();
        using var res = await http.GetAsync(path(i));
        res.EnsureSuccessStatusCode();
        await res.Content.ReadAsByteArrayAsync();
        samples.Add(t.Elapsed.TotalMilliseconds);
    }

    samples.Sort();
    results.Add((name, Pct(samples, 0.50), Pct(samples, 0.95), Pct(samples, 0.99)));
    Console.WriteLine($"GET {name}: p50 {Pct(samples, 0.5):F1} ms, p95 {Pct(samples, 0.95):F1} ms, p99 {Pct(samples, 0.99):F1} ms");
}

// 2. Projection catch-up vs the raw global read, same run, same log.
await Exec(ds, "TRUNCATE pf_pump_status");
var store = app.Services.GetRequiredService<IEventStore>();
sw.Restart();
await AppendEventsAsync(store, eventPumps, eventsPerPump);
var total = (long)eventPumps * (eventsPerPump + 1);
Console.WriteLine($"appended {total:N0} events in {sw.Elapsed.TotalSeconds:F1} s");
sw.Restart();
var read = 0L;
var checkpoint = GlobalCheckpoint.Start;
while (true)
{
    var page = await store.ReadAllAsync(checkpoint, 500);
    if (page.Events.Count == 0)
    {
        break;
    }

    read += page.Events.Count;
    checkpoint = page.Next;
}

var rawRate = read / sw.Elapsed.TotalSeconds;
Console.WriteLine($"raw ReadAllAsync (pages of 500): {rawRate:N0} events/s");
var runner = app.Services.GetRequiredService<ProjectionRunner>();
var rates = new List<(string, double)>();
foreach (var name in new[] { PumpProjection.ProjectionName, AnomalyProjection.ProjectionName, CohortProjection.ProjectionName })
{
    sw.Restart();
    await runner.CatchUpAsync(name, 0, 1, TimeSpan.FromHours(1), CancellationToken.None);
    var rate = total / sw.Elapsed.TotalSeconds;
    rates.Add((name, rate));
    Console.WriteLine($"projection {name}: {rate:N0} events/s ({rate / rawRate:P0} of the raw read)");
}

Console.WriteLine();
Console.WriteLine("| query | p50 ms | p95 ms | p99 ms |");
Console.WriteLine("|---|---|---|---|");
foreach (var (name, p50, p95, p99) in results)
{
    Console.WriteLine($"| {name} | {p50:F1} | {p95:F1} | {p99:F1} |");
}

Console.WriteLine();
Console.WriteLine($"| raw ReadAllAsync | {rawRate:N0} events/s | 100 % |");
foreach (var (name, rate) in rates)
{
    Console.WriteLine($"| projection {name} | {rate:N0} events/s | {rate / rawRate:P0} |");
}

await app.StopAsync();
return 0;

static double Pct(List<double> sorted, double p) => sorted[Math.Min(sorted.Count - 1, (int)Math.Ceiling(p * sorted.Count) - 1)];

static async Task SeedStatusAsync(NpgsqlDataSource ds, int count)
{
    string[] statuses = ["ok", "ok", "ok", "ok", "ok", "ok", "attention", "attention", "stopped", "critical", "unknown", "inactive"];
    string[] models = ["SM2-40", "SM2-20", "PR-20"];
    string[] firmwares = ["4.2.1", "4.3.0", "4.3.1"];
    var now = DateTimeOffset.UtcNow;
    await using var conn = await ds.OpenConnectionAsync();
    await using var writer = await conn.BeginBinaryImportAsync("""
        COPY pf_pump_status (serial, hub_id, model, firmware, lot, phase, drug, status, reservoir_ml, forecast_empty_at, next_refill_due_at,
            active_alarms, active_alarm_codes, open_anomalies, last_seen_at, last_event_at, last_seq, battery_pct, critical, version, state, updated_at)
        FROM STDIN (FORMAT BINARY)
        """);
    for (var i = 0; i < count; i++)
    {
        var status = statuses[i * 31 % statuses.Length];
        await writer.StartRowAsync();
        await writer.WriteAsync($"P{i:D6}", NpgsqlDbType.Text);
        await writer.WriteAsync($"HUB{i / 2:D6}", NpgsqlDbType.Text);
        await writer.WriteAsync(models[i % 3], NpgsqlDbType.Text);
        await writer.WriteAsync(firmwares[i / 3 % 3], NpgsqlDbType.Text);
        await writer.WriteAsync($"L{2200 + (i / 9 % 40)}", NpgsqlDbType.Text);
        await writer.WriteAsync("implanted", NpgsqlDbType.Text);
        await writer.WriteAsync(i % 2 == 0 ? "baclofen" : "morphine", NpgsqlDbType.Text);
        await writer.WriteAsync(status, NpgsqlDbType.Text);
        await writer.WriteAsync(5.0 + (i % 35), NpgsqlDbType.Double);
        await writer.WriteAsync(now.AddHours(i % 2000), NpgsqlDbType.TimestampTz);
        await writer.WriteAsync(now.AddHours((i % 2000) - 72), NpgsqlDbType.TimestampTz);
        await writer.WriteAsync(status is "critical" or "attention" ? 1 : 0, NpgsqlDbType.Integer);
        await writer.WriteAsync(status is "critical" ? new[] { "MOTOR_STALL" } : Array.Empty<string>(), NpgsqlDbType.Array | NpgsqlDbType.Text);
        await writer.WriteAsync(i % 50 == 0 ? 1 : 0, NpgsqlDbType.Integer);
        await writer.WriteAsync(now.AddMinutes(-(i % 5000)), NpgsqlDbType.TimestampTz);
        await writer.WriteAsync(now.AddMinutes(-(i % 5000) - 1), NpgsqlDbType.TimestampTz);
        await writer.WriteAsync((long)(1000 + i % 500), NpgsqlDbType.Bigint);
        await writer.WriteAsync(50.0 + (i % 50), NpgsqlDbType.Double);
        await writer.WriteAsync(status == "critical", NpgsqlDbType.Boolean);
        await writer.WriteAsync((long)(1000 + i % 500), NpgsqlDbType.Bigint);
        await writer.WriteAsync("{}", NpgsqlDbType.Jsonb);
        await writer.WriteAsync(now, NpgsqlDbType.TimestampTz);
    }

    await writer.CompleteAsync();
}

// Rounds of 10 events per pump, so pages mix many pumps as live traffic does.
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

static async Task Exec(NpgsqlDataSource ds, string sql)
{
    await using var cmd = ds.CreateCommand(sql);
    await cmd.ExecuteNonQueryAsync();
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
