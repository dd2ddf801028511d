using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text;
using MQTTnet;
using MQTTnet.Protocol;
using MQTTnet.Server;
using Npgsql;
using PumpFleet.EventStore;
using PumpFleet.EventStore.Benchmarks;
using PumpFleet.EventStore.Local;
using PumpFleet.Simulator.Transport;

// End-to-end load benchmark. Usage (after `dotnet build -c Release src/Silo`):
//   dotnet run -c Release --project bench/LoadBench [-- --mode short|long --hubs 64 --pumps-per-hub 4 --events-per-message 50]
// The platform runs as its own process (the all-in-one silo with the embedded broker, simulator off) so its CPU and
// memory are measured apart from the load generator and PostgreSQL.
var mode = Arg("--mode", "short");
var hubs = int.Parse(Arg("--hubs", "64"), CultureInfo.InvariantCulture);
var pumpsPerHub = int.Parse(Arg("--pumps-per-hub", "4"), CultureInfo.InvariantCulture);
var perMessage = int.Parse(Arg("--events-per-message", "50"), CultureInfo.InvariantCulture);
var fixedRate = int.Parse(Arg("--fixed-rate", "5000"), CultureInfo.InvariantCulture);
var phase = TimeSpan.FromSeconds(mode == "long" ? 120 : 20);
var repoRoot = FindRepoRoot();
var siloDll = Path.Combine(repoRoot, "src/Silo/bin/Release/net10.0/PumpFleet.Silo.dll");
if (!File.Exists(siloDll))
{
    Console.Error.WriteLine($"{siloDll} not found: run `dotnet build -c Release src/Silo` first.");
    return 2;
}

Console.WriteLine($"Load benchmark ({mode}): {hubs} hubs x {pumpsPerHub} pumps, {perMessage} events per message, phases of {phase.TotalSeconds:N0} s");
await using var pg = await PrivatePostgres.StartAsync(durable: true, progress: Console.WriteLine);
var mqttPort = FreePort();
var httpPort = FreePort();
using var platform = StartPlatform(siloDll, pg.ConnectionString(), mqttPort, httpPort);
await WaitForAsync($"http://127.0.0.1:{httpPort}/health/ready", TimeSpan.FromSeconds(90));
Console.WriteLine($"Platform pid {platform.Id} ready (MQTT {mqttPort}, HTTP {httpPort})");

var results = new List<(string Name, double EventsPerSecond, double[] LatenciesMs)>();
var load = new HubLoad(hubs, pumpsPerHub, perMessage, "127.0.0.1", mqttPort, "dev");
await load.ConnectAsync();
await load.RunAsync(TimeSpan.FromSeconds(5), targetEventsPerSecond: 500);   // warm-up: activations, pairing, JIT

var cpu0 = CpuSeconds(platform.Id);
var pgCpu0 = PostgresCpuSeconds(pg.DataDirectory);
var fixedRun = await load.RunAsync(phase, fixedRate);
results.Add(($"platform, offered {fixedRate:N0} events/s", fixedRun.EventsPerSecond, fixedRun.LatenciesMs));
var satRun = await load.RunAsync(phase, targetEventsPerSecond: 0);
results.Add(("platform, saturation", satRun.EventsPerSecond, satRun.LatenciesMs));
var cpu1 = CpuSeconds(platform.Id);
var pgCpu1 = PostgresCpuSeconds(pg.DataDirectory);
var rssMb = RssMb(platform.Id);
await load.DisposeAsync();
var stored = await CountAsync(pg.ConnectionString(), "SELECT count(*) FROM pf_events WHERE seq IS NOT NULL");

// Baseline 1: a bare MQTTnet broker (no interceptor), same clients, payloads and pacing.
var barePort = FreePort();
using (var bare = new MqttServerFactory().CreateMqttServer(new MqttServerOptionsBuilder().WithDefaultEndpoint()
           .WithDefaultEndpointBoundIPAddress(IPAddress.Loopback).WithDefaultEndpointBoundIPV6Address(IPAddress.None)
           .WithDefaultEndpointPort(barePort).Build()))
{
    await bare.StartAsync();
    var bareLoad = new HubLoad(hubs, pumpsPerHub, perMessage, "127.0.0.1", barePort, "dev");
    await bareLoad.ConnectAsync();
    var bareRun = await bareLoad.RunAsync(phase, targetEventsPerSecond: 0);
    results.Add(("bare MQTT QoS 1 publish→PUBACK, saturation", bareRun.EventsPerSecond, bareRun.LatenciesMs));
    await bareLoad.DisposeAsync();
    await bare.StopAsync();
}

// Baseline 2: raw binary COPY of as many event rows as the platform stored at saturation, same shape.
var copyRows = (int)Math.Max(10_000, satRun.EventsPerSecond * phase.TotalSeconds);
var copyRate = await CopyBaselineAsync(pg.ConnectionString(), copyRows);

platform.Kill(entireProcessTree: true);
var sat = results[1];
Console.WriteLine();
Console.WriteLine($"Stored device events: {stored:N0} (every acknowledged event is in pf_events: checked = {stored >= load.Acked})");
Console.WriteLine();
Console.WriteLine("| run | events/s | publish→ack p50 / p95 / p99 (ms) |");
Console.WriteLine("|---|---:|---|");
foreach (var (name, rate, lat) in results)
{
    Console.WriteLine($"| {name} | {rate:N0} | {P(lat, 0.50):F1} / {P(lat, 0.95):F1} / {P(lat, 0.99):F1} |");
}

Console.WriteLine($"| raw PostgreSQL COPY of {copyRows:N0} event rows | {copyRate:N0} | – |");
Console.WriteLine();
Console.WriteLine($"| ratio | value |");
Console.WriteLine("|---|---:|");
Console.WriteLine($"| platform saturation / bare MQTT | {sat.EventsPerSecond / results[2].EventsPerSecond:P0} |");
Console.WriteLine($"| platform saturation / raw COPY | {sat.EventsPerSecond / copyRate:P0} |");
Console.WriteLine($"| platform process CPU during both platform phases | {(cpu1 - cpu0) / (2 * phase.TotalSeconds):P0} of one core |");
Console.WriteLine($"| PostgreSQL processes CPU during both platform phases | {(pgCpu1 - pgCpu0) / (2 * phase.TotalSeconds):P0} of one core |");
Console.WriteLine($"| platform process resident memory at the end | {rssMb:N0} MiB |");
return 0;

string Arg(string name, string fallback)
{
    var i = Array.IndexOf(args, name);
    return i >= 0 && i + 1 < args.Length ? args[i + 1] : fallback;
}

static double P(double[] sorted, double q) => sorted.Length == 0 ? double.NaN : sorted[Math.Min(sorted.Length - 1, (int)(q * sorted.Length))];

static int FreePort()
{
    using var l = new TcpListener(IPAddress.Loopback, 0);
    l.Start();
    return ((IPEndPoint)l.LocalEndpoint).Port;
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

static Process StartPlatform(string dll, string cs, int mqttPort, int httpPort)
{
    var psi = new ProcessStartInfo("dotnet", [dll])
    {
        WorkingDirectory = Path.GetDirectoryName(dll)!,
        RedirectStandardOutput = true,
        RedirectStandardError = true,
    };
    psi.Environment["ASPNETCORE_ENVIRONMENT"] = "Development";
    psi.Environment["ConnectionStrings__PumpFleet"] = cs;
    psi.Environment["Urls"] = $"http://127.0.0.1:{httpPort}";
    psi.Environment["Gateway__Mqtt__Port"] = mqttPort.ToString(CultureInfo.InvariantCulture);
    psi.Environment["PumpFleet__Simulator__Enabled"] = "false";
    psi.Environment["PumpFleet__SiloPort"] = FreePort().ToString(CultureInfo.InvariantCulture);
    psi.Environment["PumpFleet__GatewayPort"] = FreePort().ToString(CultureInfo.InvariantCulture);
    psi.Environment["Logging__LogLevel__Default"] = "Warning";
    var p = Process.Start(psi)!;
    p.OutputDataReceived += (_, _) => { };
    p.ErrorDataReceived += (_, e) => { if (e.Data is not null) Console.Error.WriteLine("platform: " + e.Data); };
    p.BeginOutputReadLine();
    p.BeginErrorReadLine();
    return p;
}

static async Task WaitForAsync(string url, TimeSpan timeout)
{
    using var http = new HttpClient();
    var sw = Stopwatch.StartNew();
    while (sw.Elapsed < timeout)
    {
        try
        {
            if ((await http.GetAsync(url)).IsSuccessStatusCode)
            {
                return;
            }
        }
        catch (HttpRequestException)
        {
            // Not listening yet.
        }

        await Task.Delay(250);
    }

    throw new TimeoutException($"{url} not ready after {timeout}.");
}

static double CpuSeconds(int pid)
{
    var f = File.ReadAllText($"/proc/{pid}/stat").Split(' ');
    return (long.Parse(f[13], CultureInfo.InvariantCulture) + long.Parse(f[14], CultureInfo.InvariantCulture)) / 100.0;
}

static double PostgresCpuSeconds(string dataDir)
{
    double total = 0;
    foreach (var dir in Directory.GetDirectories("/proc").Where(d => int.TryParse(Path.GetFileName(d), out _)))
    {
        try
        {
            var cmd = File.ReadAllText(Path.Combine(dir, "cmdline"));
            var exe = File.ReadAllText(Path.Combine(dir, "comm")).Trim();
            if (exe.StartsWith("postgres", StringComparison.Ordinal) || cmd.Contains(dataDir, StringComparison.Ordinal))
            {
                total += CpuSeconds(int.Parse(Path.GetFileName(dir), CultureInfo.InvariantCulture));
            }
        }
        catch (IOException)
        {
            // The process ended while we looked.
        }
    }

    return total;
}

static double RssMb(int pid) =>
    File.ReadAllLines($"/proc/{pid}/status").Where(l => l.StartsWith("VmRSS:", StringComparison.Ordinal))
        .Select(l => long.Parse(l.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], CultureInfo.InvariantCulture) / 1024.0).First();

static async Task<long> CountAsync(string cs, string sql)
{
    await using var ds = NpgsqlDataSource.Create(cs);
    await using var cmd = ds.CreateCommand(sql);
    return (long)(await cmd.ExecuteScalarAsync())!;
}

static async Task<double> CopyBaselineAsync(string cs, int rows)
{
    await using var ds = NpgsqlDataSource.Create(cs);
    await RawCopyBaseline.CreateTableAsync(ds);
    var t0 = new DateTime(2026, 11, 1, 0, 0, 0, DateTimeKind.Utc);
    const string data = """{"seq":1,"at":"2026-11-01T01:00:00Z","from":"2026-11-01T00:00:00Z","volumeMl":0.0208,"kind":"basal"}""";
    // Rows are made while they are copied, as the platform's are while they arrive: 256 streams, one COPY.
    IEnumerable<RawCopyRow> Rows()
    {
        for (var i = 0; i < rows; i++)
        {
            var at = new DateTimeOffset(t0.AddHours(i));
            yield return new RawCopyRow($"COPY-{i % 256:D4}", (i / 256) + 1,
                new EventToAppend(Guid.NewGuid(), "dose.delivered", data, (i / 256) + 1, at, at, false, """{"hubId":"hub-0001"}"""));
        }
    }

    var sw = Stopwatch.StartNew();
    await RawCopyBaseline.CopyAsync(ds, Rows());
    return rows / sw.Elapsed.TotalSeconds;
}

/// <summary>Hubs that publish batches of dose events for their pumps, QoS 1, and time publish→PUBACK.</summary>
internal sealed class HubLoad(int hubs, int pumpsPerHub, int perMessage, string host, int port, string fleetSecret) : IAsyncDisposable
{
    private readonly List<(IMqttClient Client, string HubId)> _clients = [];
    private readonly Dictionary<string, long> _seq = new(StringComparer.Ordinal);
    private readonly DateTimeOffset _t0 = new(2026, 11, 1, 0, 0, 0, TimeSpan.Zero);

    public long Acked { get; private set; }

    public async Task ConnectAsync()
    {
        var run = Guid.NewGuid().ToString("N")[..6];
        for (var h = 0; h < hubs; h++)
        {
            var hubId = $"LB{run}-H{h:D3}";
            var client = new MqttClientFactory().CreateMqttClient();
            var r = await client.ConnectAsync(new MqttClientOptionsBuilder().WithTcpServer(host, port).WithClientId(hubId)
                .WithCredentials(hubId, FleetSecretHubCredentials.Derive(fleetSecret, hubId)).WithCleanSession().WithTimeout(TimeSpan.FromSeconds(30)).Build());
            if (r.ResultCode != MqttClientConnectResultCode.Success)
            {
                throw new InvalidOperationException($"{hubId}: {r.ResultCode}");
            }

            _clients.Add((client, hubId));
        }
    }

    /// <summary>Publishes for <paramref name="duration"/>; a target of 0 means as fast as each hub's PUBACKs allow.</summary>
    public async Task<(double EventsPerSecond, double[] LatenciesMs)> RunAsync(TimeSpan duration, int targetEventsPerSecond)
    {
        var latencies = new List<double>[_clients.Count];
        long events = 0;
        var sw = Stopwatch.StartNew();
        var messagesPerSecondPerHub = targetEventsPerSecond <= 0 ? 0 : targetEventsPerSecond / (double)perMessage / _clients.Count;
        await Task.WhenAll(_clients.Select((c, i) => Task.Run(async () =>
        {
            var lat = latencies[i] = [];
            var sent = 0;
            var p = 0;
            while (sw.Elapsed < duration)
            {
                if (messagesPerSecondPerHub > 0)
                {
                    // Open-loop pacing: message n is due at n / rate; a late hub does not sleep.
                    var due = TimeSpan.FromSeconds(sent / messagesPerSecondPerHub);
                    if (due > sw.Elapsed)
                    {
                        await Task.Delay(due - sw.Elapsed);
                    }
                }

                var serial = $"{c.HubId}-P{p++ % pumpsPerHub}";
                var (topic, payload) = Batch(c.HubId, serial);
                var t = Stopwatch.GetTimestamp();
                var r = await c.Client.PublishAsync(new MqttApplicationMessageBuilder().WithTopic(topic).WithPayload(payload)
                    .WithQualityOfServiceLevel(MqttQualityOfServiceLevel.AtLeastOnce).Build());
                if (!r.IsSuccess)
                {
                    throw new InvalidOperationException($"{serial}: PUBACK {r.ReasonCode}");
                }

                lat.Add(Stopwatch.GetElapsedTime(t).TotalMilliseconds);
                Interlocked.Add(ref events, perMessage);
                sent++;
            }
        })));
        var elapsed = sw.Elapsed.TotalSeconds;
        Acked += events;
        return (events / elapsed, [.. latencies.SelectMany(l => l).Order()]);
    }

    private (string Topic, byte[] Payload) Batch(string hubId, string serial)
    {
        lock (_seq)
        {
            var first = !_seq.TryGetValue(serial, out var seq);
            var sb = new StringBuilder(perMessage * 120);
            sb.Append("""{"v":1,""");
            if (first)
            {
                sb.Append("""    "device":{"model":"SM2-40","firmware":"4.2.1","lot":"L2291","reservoirCapacityMl":40},""");
            }

            sb.Append("\"events\":[");
            for (var i = 0; i < perMessage; i++)
            {
                seq++;
                var at = _t0.AddMinutes(seq * 10);
                if (i > 0)
                {
                    sb.Append(',');
                }

                sb.Append(CultureInfo.InvariantCulture, $$"""{"seq":{{seq}},"type":"dose.delivered","at":"{{at:yyyy-MM-ddTHH:mm:ssZ}}","from":"{{at.AddMinutes(-10):yyyy-MM-ddTHH:mm:ssZ}}","volumeMl":0.0035,"kind":"basal"}""");
            }

            sb.Append("]}");
            _seq[serial] = seq;
            return ($"pumpfleet/v1/hubs/{hubId}/pumps/{serial}/events", Encoding.UTF8.GetBytes(sb.ToString()));
        }
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var (client, _) in _clients)
        {
            await client.DisconnectAsync();
            client.Dispose();
        }
    }
}
