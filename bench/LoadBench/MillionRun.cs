using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text;
using MQTTnet;
using MQTTnet.Protocol;
using Npgsql;
using PumpFleet.Contracts.Events;
using PumpFleet.EventStore.Benchmarks;
using PumpFleet.EventStore.Local;
using PumpFleet.Simulator.Transport;
using PumpFleet.Simulator.Wire;

/// <summary>
/// A million pumps on one box (issue 15 item 4), in real time:
/// <c>dotnet run -c Release --project bench/LoadBench -- --million [--pumps 1000000 --hubs 500 --minutes 45
/// --period-minutes 60 --heap-limit-gib 10 --reactivate 20000 --statement-stats --pg-settings shared_buffers=4GB,max_wal_size=8GB
/// --gcdump /tmp/tools/dotnet-gcdump --gcdump-baseline-reports 20000 --rewind-window 1024]</c> (after <c>dotnet build -c Release src/Silo</c>).
/// Registers the fleet with the silo's own bulk commands (<c>hubs import</c>, <c>pumps import</c>), starts the all-in-one
/// Release platform in its own process with a GC heap cap, connects the clinic hubs over MQTT and has every pump send
/// its report once per period, spread evenly (1,000,000 pumps an hour ≈ 278 messages/s), QoS 1, publish→PUBACK timed.
/// A pump's first report carries its device and state (6 events); after the real-time phase, <c>--reactivate</c>
/// pumps that idle collection deactivated send their next report as fast as the platform takes them (reactivation cost).
/// Every minute prints a line (CPU, memory, active pumps, latency); the end prints the table for docs/benchmarks.md.
/// </summary>
internal static class MillionRun
{
    private const string FleetSecret = "million-run";

    public static async Task<int> RunAsync(string[] args, string siloDll)
    {
        var pumps = IntArg(args, "--pumps", 1_000_000);
        var hubs = IntArg(args, "--hubs", 500);
        var minutes = IntArg(args, "--minutes", 45);
        var period = TimeSpan.FromMinutes(IntArg(args, "--period-minutes", 60));
        var heapGib = IntArg(args, "--heap-limit-gib", 10);
        var reactivate = IntArg(args, "--reactivate", 20_000);
        var perHub = (pumps + hubs - 1) / hubs;
        var rate = pumps / period.TotalSeconds;
        Console.WriteLine(Inv($"Million run: {pumps:N0} pumps on {hubs:N0} clinic hubs ({perHub:N0} each), one report per pump every {period.TotalMinutes:N0} min ({rate:N1} messages/s), {minutes} min of real time, platform heap cap {heapGib} GiB; {DateTime.UtcNow:u}, load average {LoadAverage()}"));

        // --statement-stats: pg_stat_statements over the real-time phase, per report (where PostgreSQL's ~4 ms per cold
        // report goes: the activation's reads, the append, the read models).
        var statementStats = args.Contains("--statement-stats");
        // --pg-settings shared_buffers=4GB,max_wal_size=8GB: the server's settings for a fleet this size (the private
        // server's defaults, 256 MB of shared buffers, are sized for the simulator's fleet, not a million pumps' indexes).
        var pgSettings = StringArg(args, "--pg-settings", "").Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        if (pgSettings.Length > 0)
        {
            Console.WriteLine($"PostgreSQL settings: {string.Join(", ", pgSettings)}");
        }

        // --gcdump PATH (dotnet-gcdump, e.g. /tmp/tools/dotnet-gcdump): the live objects' bytes at the start and after the
        // real-time phase. The dump walks the heap after a full blocking collection, so it counts only what is reachable;
        // the heap size after the last collection (the per-minute column) also holds garbage a background collection left.
        var gcdump = StringArg(args, "--gcdump", "");
        // --gcdump-baseline-reports N: the first dump is taken after N pumps have reported (the hubs paused and every
        // publish acknowledged first, so no backlog sits in the heap), not before the run: the figure is then the live
        // bytes per *additional* active pump between two dumps taken alike. The platform's start-up work (the cohort read
        // models loading the registered fleet, caches filling, the streams' rewind windows filling) is then in both
        // dumps, not counted as the pumps' (the ninth session's start dump came before it). 0: before the hubs connect.
        var baselineReports = IntArg(args, "--gcdump-baseline-reports", 20_000);
        // --rewind-window N (Streaming:RewindWindow, events kept per queue for rewinding consumers; default 16,384): a
        // fixed amount per queue, not per pump, but at the default it fills only after ~44,000 first reports, so between
        // two dumps of a short run it grows with the pumps; a small window is full before the baseline dump.
        var rewindWindow = IntArg(args, "--rewind-window", 0);
        if (gcdump.Length > 0 && !File.Exists(gcdump))
        {
            await Console.Error.WriteLineAsync($"--gcdump {gcdump}: no such file (install it: dotnet tool install --tool-path /tmp/tools dotnet-gcdump)");
            return 2;
        }

        await using var pg = await PrivatePostgres.StartAsync(durable: true, progress: Console.WriteLine, statementStatistics: statementStats, settings: pgSettings);
        var cs = pg.ConnectionString();
        var dir = Directory.CreateTempSubdirectory("pumpfleet-million-").FullName;
        var run = Guid.NewGuid().ToString("N")[..4].ToUpperInvariant();
        string HubId(int h) => Inv($"CLINIC{run}-{h:D4}");
        string Serial(int p) => Inv($"M{run}{p:D7}");
        int HubOf(int p) => p / perHub;

        // 1. Registration through the product's own commands: the clinic hubs with their secrets, then the pumps.
        var hubsCsv = Path.Combine(dir, "hubs.csv");
        var pumpsCsv = Path.Combine(dir, "pumps.csv");
        await File.WriteAllLinesAsync(hubsCsv, ["hub_id,secret", .. Enumerable.Range(0, hubs).Select(h => $"{HubId(h)},{FleetSecretHubCredentials.Derive(FleetSecret, HubId(h))}")]);
        await using (var w = new StreamWriter(pumpsCsv))
        {
            await w.WriteLineAsync("serial,hub_id");
            for (var p = 0; p < pumps; p++)
            {
                await w.WriteLineAsync($"{Serial(p)},{HubId(HubOf(p))}");
            }
        }

        var env = new Dictionary<string, string> { ["ConnectionStrings__PumpFleet"] = cs, ["Logging__LogLevel__Default"] = "Warning" };
        var hubsTime = await RunCommandAsync(siloDll, ["hubs", "import", hubsCsv], env);
        await using var ds = NpgsqlDataSource.Create(cs);
        var bytesBefore = await PartitioningBaseline.EventTableBytesAsync(ds);
        var pumpsTime = await RunCommandAsync(siloDll, ["pumps", "import", pumpsCsv, "--actor=million-run"], env);
        var bytesRegistered = await PartitioningBaseline.EventTableBytesAsync(ds);
        Console.WriteLine(Inv($"Registered {hubs:N0} hubs in {hubsTime.TotalSeconds:N1} s and {pumps:N0} pumps in {pumpsTime.TotalSeconds:N1} s ({pumps / pumpsTime.TotalSeconds:N0} pumps/s, process start and migration check included); event table +{(bytesRegistered - bytesBefore) / (double)pumps:N0} bytes per pump"));

        // 2. The platform, all-in-one Release, in its own process with a heap cap (the machine is shared).
        var mqttPort = FreePort();
        var httpPort = FreePort();
        var platformEnv = new Dictionary<string, string>(env)
        {
            ["DOTNET_GCHeapHardLimit"] = "0x" + ((long)heapGib << 30).ToString("X", CultureInfo.InvariantCulture),
            ["ASPNETCORE_ENVIRONMENT"] = "Development",
            ["Urls"] = $"http://127.0.0.1:{httpPort}",
            ["Gateway__Mqtt__Port"] = Inv($"{mqttPort}"),
            ["PumpFleet__Simulator__Enabled"] = "false",
            ["PumpFleet__SiloPort"] = Inv($"{FreePort()}"),
            ["PumpFleet__GatewayPort"] = Inv($"{FreePort()}"),
            // The hubs are provisioned: no dev-fleet shortcut, no auto-pairing. Their first connects all verify
            // PBKDF2 at once, which the default budget (5/s, for floods) would spread over minutes.
            ["Gateway__Hubs__DevFleetSecret"] = "",
            ["Gateway__Hubs__AutoPairOnFirstBatch"] = "false",
            ["Gateway__Hubs__VerificationBudgetPerSecond"] = "100",
            ["Gateway__Hubs__VerificationBudgetBurst"] = "100",
            ["Gateway__Hubs__HashConcurrency"] = "2",
            ["Gateway__Mqtt__ConnectTimeout"] = "00:01:00",
        };
        if (rewindWindow > 0)
        {
            platformEnv["Streaming__RewindWindow"] = Inv($"{rewindWindow}");
            Console.WriteLine(Inv($"Streaming:RewindWindow {rewindWindow:N0} events per queue"));
        }
        // The platform's whole log (Warning and above) goes to a file, exceptions included: the console shows only the
        // lines that say a hub or the process is in trouble, without their cause.
        var platformLog = Path.Combine(Path.GetTempPath(), $"pumpfleet-million-{run}-platform.log");
        Console.WriteLine($"Platform log: {platformLog}");
        using var platform = StartPlatform(siloDll, platformEnv, platformLog);
        // A failed run (an exception anywhere below) must not leave the platform running on the shared machine.
        try
        {
            using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(30) };
            await WaitReadyAsync(http, $"http://127.0.0.1:{httpPort}/health/ready", TimeSpan.FromMinutes(5));
            var metricsUrl = $"http://127.0.0.1:{httpPort}/metrics";
            var m0 = await ScrapeAsync(http, metricsUrl);
            Console.WriteLine(Inv($"Platform pid {platform.Id} ready: heap {m0.HeapBytes / 1048576.0:N0} MiB, RSS {Rss(platform.Id):N0} MiB, {m0.ActivePumps:N0} pumps active"));
            var live0 = gcdump.Length > 0 && baselineReports == 0 ? await LiveHeap.DumpAsync(gcdump, platform.Id, dir, "start", Console.WriteLine) : null;
            var mBase = live0 is null ? null : m0;

            // 3. The clinic hubs.
            var clients = new IMqttClient[hubs];
            var connect = Stopwatch.StartNew();
            await Parallel.ForAsync(0, hubs, new ParallelOptions { MaxDegreeOfParallelism = 8 }, async (h, ct) =>
            {
                for (var attempt = 1; ; attempt++)
                {
                    var c = new MqttClientFactory().CreateMqttClient();
                    string outcome;
                    try
                    {
                        var r = await c.ConnectAsync(new MqttClientOptionsBuilder().WithTcpServer("127.0.0.1", mqttPort).WithClientId(HubId(h))
                            .WithCredentials(HubId(h), FleetSecretHubCredentials.Derive(FleetSecret, HubId(h))).WithCleanSession()
                            .WithKeepAlivePeriod(TimeSpan.FromMinutes(2)).WithTimeout(TimeSpan.FromSeconds(60)).Build(), ct);
                        if (r.ResultCode == MqttClientConnectResultCode.Success)
                        {
                            clients[h] = c;
                            return;
                        }

                        outcome = r.ResultCode.ToString();
                    }
                    catch (MQTTnet.Exceptions.MqttCommunicationException e)
                    {
                        // Closed while the gateway verified the secret (its connect timeout under load): connect again.
                        outcome = e.Message;
                    }

                    c.Dispose();
                    if (attempt == 20)
                    {
                        throw new InvalidOperationException($"{HubId(h)}: {outcome}");
                    }

                    await Task.Delay(TimeSpan.FromSeconds(attempt), ct); // ServerBusy while the verification budget refills
                }
            });
            var mConnected = await ScrapeAsync(http, metricsUrl);
            Console.WriteLine(Inv($"{hubs:N0} hubs connected in {connect.Elapsed.TotalSeconds:N1} s; gateway dependency failures so far {mConnected.DependencyFailures:N0}; load average {LoadAverage()}"));

            // 4. Real time: pump i's first report is due at i / rate; open loop (a late platform does not slow the hubs,
            // the lag is recorded), at most 32 publishes in flight per hub.
            var t0 = DateTimeOffset.UtcNow;
            var device = new DeviceInfo { Model = "SM2-40", Firmware = "4.2.1", Lot = "L2291", ReservoirCapacityMl = 40 };
            var conc = new Concentration { Value = 25, Unit = "mg/mL" };
            byte[] FirstReport(DateTimeOffset now)
            {
                var at = now.AddMinutes(-1);
                return Encoding.UTF8.GetBytes(WireJson.Batch(device, [
                    WireJson.Event(new TherapyPhaseChanged { Seq = 1, At = at.AddDays(-30), Phase = "implanted", Indication = "cancer-pain" }),
                    WireJson.Event(new PrescriptionSet { Seq = 2, At = at.AddDays(-30), Drug = "morphine", Concentration = conc, Mode = "continuous", RateMlPerDay = 0.5, LowReservoirAlarmMl = 4 }),
                    WireJson.Event(new RefillPerformed { Seq = 3, At = at.AddDays(-2), ExpectedResidualMl = 3, AspiratedResidualMl = 2.9, AddedMl = 38, Drug = "morphine", Concentration = conc }),
                    WireJson.Event(new DoseDelivered { Seq = 4, At = at, From = at.AddHours(-1), VolumeMl = 0.0208, Kind = "basal" }),
                    WireJson.Event(new StatusReported { Seq = 5, At = at, BatteryPct = 87, BatteryV = 3.05, TempC = 36.8, Motor = "running" }),
                    WireJson.Event(new ReservoirLevelReported { Seq = 6, At = at, VolumeMl = 37, Source = "estimated" }),
                ]));
            }

            byte[] NextReport(DateTimeOffset now) => Encoding.UTF8.GetBytes(WireJson.Batch(null, [
                WireJson.Event(new DoseDelivered { Seq = 7, At = now.AddMinutes(-1), From = now.AddMinutes(-61), VolumeMl = 0.0208, Kind = "basal" }),
                WireJson.Event(new StatusReported { Seq = 8, At = now.AddMinutes(-1), BatteryPct = 87, BatteryV = 3.05, TempC = 36.8, Motor = "running" }),
            ]));

            var inFlight = Enumerable.Range(0, hubs).Select(_ => new SemaphoreSlim(32)).ToArray();
            var latencies = new List<double>(1 << 20);
            var minuteLat = new List<double>();
            long sent = 0, acked = 0, failed = 0;
            double maxLagS = 0;
            var pending = new List<Task>();

            async Task PublishAsync(int p, byte[] payload, List<double>? into)
            {
                var h = HubOf(p);
                await inFlight[h].WaitAsync();
                try
                {
                    var start = Stopwatch.GetTimestamp();
                    var r = await clients[h].PublishAsync(new MqttApplicationMessageBuilder().WithTopic(Topics.Events(HubId(h), Serial(p)))
                        .WithPayload(payload).WithQualityOfServiceLevel(MqttQualityOfServiceLevel.AtLeastOnce).Build());
                    var ms = Stopwatch.GetElapsedTime(start).TotalMilliseconds;
                    if (r.IsSuccess)
                    {
                        Interlocked.Increment(ref acked);
                        lock (latencies)
                        {
                            (into ?? latencies).Add(ms);
                            if (into is null)
                            {
                                minuteLat.Add(ms);
                            }
                        }
                    }
                    else
                    {
                        Interlocked.Increment(ref failed);
                    }
                }
                catch (Exception e) when (e is MQTTnet.Exceptions.MqttCommunicationException or OperationCanceledException or InvalidOperationException)
                {
                    Interlocked.Increment(ref failed);
                }
                finally
                {
                    inFlight[h].Release();
                }
            }

            var duration = TimeSpan.FromMinutes(minutes);
            var statements0 = statementStats ? await PgStatements.StartAsync(pg.ConnectionString(), cs) : null;
            var sw = Stopwatch.StartNew();
            // The real-time clock stops while the hubs pause for the baseline dump (the schedule resumes where it was).
            var paused = TimeSpan.Zero;
            TimeSpan Clock() => sw.Elapsed - paused;
            var cpu0 = CpuSeconds(platform.Id);
            var pgCpu0 = PostgresCpuSeconds(pg.DataDirectory);
            var bytes0 = await PartitioningBaseline.EventTableBytesAsync(ds);
            var samples = new List<(double Minute, double PlatformCpu, double PgCpu, double HeapMiB, double RssMiB, double Active, double P99, long Acked)>();
            var nextSample = TimeSpan.FromMinutes(1);
            var (lastCpu, lastPgCpu, lastAt) = (cpu0, pgCpu0, TimeSpan.Zero);
            var peakActive = 0.0;
            Metrics? atPeak = null;
            var reported = 0;
            Console.WriteLine("| minute | reports sent | acked | failed | max lag (s) | platform CPU (of one core) | PostgreSQL CPU | GC heap (MiB) | RSS (MiB) | pumps active | heap per active pump (B) | p50 / p99 this minute (ms) | dependency failures | load average |");
            Console.WriteLine("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|---|");
            while (Clock() < duration && reported < pumps)
            {
                if (live0 is null && gcdump.Length > 0 && reported >= baselineReports)
                {
                    // The baseline dump: every publish so far acknowledged (nothing queued in the gateway), then the dump.
                    var pauseAt = sw.Elapsed;
                    var (cpuP, pgCpuP) = (CpuSeconds(platform.Id), PostgresCpuSeconds(pg.DataDirectory));
                    await Task.WhenAll(pending);
                    pending.Clear();
                    live0 = await LiveHeap.DumpAsync(gcdump, platform.Id, dir, "baseline", Console.WriteLine);
                    mBase = await ScrapeAsync(http, metricsUrl);
                    var pause = sw.Elapsed - pauseAt;
                    paused += pause;
                    // Neither the drain nor the dump counts as the run's CPU.
                    var (dCpu, dPg) = (CpuSeconds(platform.Id) - cpuP, PostgresCpuSeconds(pg.DataDirectory) - pgCpuP);
                    (cpu0, pgCpu0, lastCpu, lastPgCpu) = (cpu0 + dCpu, pgCpu0 + dPg, lastCpu + dCpu, lastPgCpu + dPg);
                    Console.WriteLine(Inv($"Baseline dump after {reported:N0} reports, {mBase.ActivePumps:N0} pumps active; the hubs paused {pause.TotalSeconds:N1} s for the drain and the dump (not counted as run time or CPU); load average {LoadAverage()}"));
                    if (live0 is null)
                    {
                        return 1;
                    }
                }

                var wait = TimeSpan.FromSeconds(reported / rate) - Clock();
                if (wait > TimeSpan.Zero)
                {
                    await Task.Delay(wait < TimeSpan.FromMilliseconds(50) ? wait : TimeSpan.FromMilliseconds(50));
                }

                while (reported < pumps && TimeSpan.FromSeconds(reported / rate) <= Clock())
                {
                    maxLagS = Math.Max(maxLagS, (Clock() - TimeSpan.FromSeconds(reported / rate)).TotalSeconds);
                    pending.Add(PublishAsync(reported, FirstReport(DateTimeOffset.UtcNow), null));
                    reported++;
                    sent++;
                }

                if (pending.Count > 10_000)
                {
                    pending.RemoveAll(t => t.IsCompleted);
                }

                if (Clock() >= nextSample)
                {
                    nextSample += TimeSpan.FromMinutes(1);
                    var m = await ScrapeAsync(http, metricsUrl);
                    var (cpu, pgCpu, at) = (CpuSeconds(platform.Id), PostgresCpuSeconds(pg.DataDirectory), Clock());
                    double[] lat;
                    lock (latencies)
                    {
                        lat = [.. minuteLat.Order()];
                        minuteLat.Clear();
                    }

                    var span = (at - lastAt).TotalSeconds;
                    var perPump = m.ActivePumps > 0 ? (m.HeapBytes - m0.HeapBytes) / m.ActivePumps : double.NaN;
                    samples.Add((at.TotalMinutes, (cpu - lastCpu) / span, (pgCpu - lastPgCpu) / span, m.HeapBytes / 1048576.0, Rss(platform.Id), m.ActivePumps, P(lat, 0.99), Interlocked.Read(ref acked)));
                    if (m.ActivePumps > peakActive)
                    {
                        (peakActive, atPeak) = (m.ActivePumps, m);
                    }

                    Console.WriteLine(Inv($"| {at.TotalMinutes:N0} | {sent:N0} | {Interlocked.Read(ref acked):N0} | {Interlocked.Read(ref failed):N0} | {maxLagS:N1} | {(cpu - lastCpu) / span:P0} | {(pgCpu - lastPgCpu) / span:P0} | {m.HeapBytes / 1048576.0:N0} | {Rss(platform.Id):N0} | {m.ActivePumps:N0} | {perPump:N0} | {P(lat, 0.5):N1} / {P(lat, 0.99):N1} | {m.DependencyFailures:N0} | {LoadAverage()} |"));
                    (lastCpu, lastPgCpu, lastAt) = (cpu, pgCpu, at);
                }
            }

            await Task.WhenAll(pending);
            pending.Clear();
            var realTime = Clock();
            var (cpu1, pgCpu1) = (CpuSeconds(platform.Id), PostgresCpuSeconds(pg.DataDirectory));
            var bytes1 = await PartitioningBaseline.EventTableBytesAsync(ds);
            var mEnd = await ScrapeAsync(http, metricsUrl);
            var liveEnd = gcdump.Length > 0 ? await LiveHeap.DumpAsync(gcdump, platform.Id, dir, "end", Console.WriteLine) : null;
            var mEndDumped = liveEnd is null ? null : await ScrapeAsync(http, metricsUrl);
            if (statements0 is not null)
            {
                var reports = Interlocked.Read(ref acked);
                await PgStatements.PrintAsync(pg.ConnectionString(), cs, new NpgsqlConnectionStringBuilder(cs).Database ?? "postgres", statements0, reports, reports * 6, "the real-time phase (a pump's first report, 6 events)");
            }

            double[] all;
            lock (latencies)
            {
                all = [.. latencies.Order()];
            }

            // 5. Reactivation: pumps that idle collection has deactivated (the earliest reporters, idle longest) send their
            // next report, as many at once as the hubs' in-flight limit allows.
            var reactTime = TimeSpan.Zero;
            var reactLat = new List<double>();
            var active0 = mEnd.ActivePumps;
            var reactCpu = 0.0;
            if (reactivate > 0 && reported > 0)
            {
                var n = Math.Min(reactivate, reported);
                var c0 = CpuSeconds(platform.Id);
                var rw = Stopwatch.StartNew();
                await Task.WhenAll(Enumerable.Range(0, n).Select(p => PublishAsync(p, NextReport(DateTimeOffset.UtcNow), reactLat)));
                (reactTime, reactCpu) = (rw.Elapsed, CpuSeconds(platform.Id) - c0);
                reactLat.Sort();
            }

            var mAfter = await ScrapeAsync(http, metricsUrl);
            var tables = await TableBytesAsync(ds);
            foreach (var c in clients)
            {
                await c.DisconnectAsync();
                c.Dispose();
            }

            platform.Kill(entireProcessTree: true);
            Directory.Delete(dir, recursive: true);

            var storedReports = Interlocked.Read(ref acked) - reactLat.Count;
            var secs = realTime.TotalSeconds;
            Console.WriteLine();
            Console.WriteLine(Inv($"Million run, {DateTime.UtcNow:u}, load average at the end {LoadAverage()}:"));
            Console.WriteLine("| measure | value |");
            Console.WriteLine("|---|---:|");
            Console.WriteLine(Inv($"| registered | {pumps:N0} pumps ({pumpsTime.TotalSeconds:N1} s with `pumps import`, {pumps / pumpsTime.TotalSeconds:N0} pumps/s), {hubs:N0} clinic hubs ({hubsTime.TotalSeconds:N1} s with `hubs import`) |"));
            Console.WriteLine(Inv($"| real time run | {realTime.TotalMinutes:N1} min at {rate:N1} messages/s offered; {reported:N0} pumps reported ({reported / (double)pumps:P1} of the fleet), {storedReports:N0} acknowledged, {Interlocked.Read(ref failed):N0} failed; largest send lag {maxLagS:N1} s |"));
            Console.WriteLine(Inv($"| achieved rate | {storedReports / secs:N1} messages/s ({storedReports * 6 / secs:N0} events/s) |"));
            Console.WriteLine(Inv($"| publish→PUBACK p50 / p95 / p99 / max | {P(all, 0.5):N1} / {P(all, 0.95):N1} / {P(all, 0.99):N1} / {(all.Length > 0 ? all[^1] : double.NaN):N0} ms |"));
            Console.WriteLine(Inv($"| platform CPU over the run | {(cpu1 - cpu0) / secs:P0} of one core ({(cpu1 - cpu0) * 1000 / Math.Max(1, storedReports):N2} ms per report) |"));
            Console.WriteLine(Inv($"| PostgreSQL CPU over the run | {(pgCpu1 - pgCpu0) / secs:P0} of one core ({(pgCpu1 - pgCpu0) * 1000 / Math.Max(1, storedReports):N2} ms per report) |"));
            Console.WriteLine(Inv($"| pumps active at the end / at the peak | {mEnd.ActivePumps:N0} / {peakActive:N0} (idle collection deactivated about {Math.Max(0, reported - mEnd.ActivePumps):N0}) |"));
            Console.WriteLine(Inv($"| GC heap after the last collection, at the peak of active pumps | {(atPeak?.HeapBytes ?? double.NaN) / 1048576.0:N0} MiB ({m0.HeapBytes / 1048576.0:N0} MiB before the run): {((atPeak?.HeapBytes ?? double.NaN) - m0.HeapBytes) / Math.Max(1, peakActive):N0} bytes per active pump (not after a forced compacting collection: an upper bound) |"));
            if (live0 is not null && liveEnd is not null && mEndDumped is not null && mBase is not null)
            {
                var added = mEndDumped.ActivePumps - mBase.ActivePumps;
                var perActive = (liveEnd.Bytes - live0.Bytes) / Math.Max(1, added);
                var truncated = LiveHeap.Truncated(live0) || LiveHeap.Truncated(liveEnd);
                var from = baselineReports == 0 ? "at the start" : Inv($"at the baseline, {mBase.ActivePumps:N0} active");
                Console.WriteLine(Inv($"| live objects after the real-time phase (dotnet-gcdump, after a full blocking collection) | {liveEnd.Bytes / 1048576.0:N0} MiB in {liveEnd.Objects:N0} objects ({live0.Bytes / 1048576.0:N0} MiB in {live0.Objects:N0} objects {from}): {(truncated ? "" : "**")}{perActive:N0} bytes per additional active pump{(truncated ? " (NOT VALID: a dump stopped at the tool's object limit, see below)" : "**")} ({mEndDumped.ActivePumps:N0} active at the end, {added:N0} more) |"));
            }

            Console.WriteLine(Inv($"| platform RSS, largest sample | {samples.Select(s => s.RssMiB).DefaultIfEmpty().Max():N0} MiB |"));
            Console.WriteLine(Inv($"| event table + indexes | +{(bytes1 - bytes0) / (double)Math.Max(1, storedReports):N0} bytes per first report (6 events); registration +{(bytesRegistered - bytesBefore) / (double)pumps:N0} bytes per pump |"));
            if (reactLat.Count > 0)
            {
                Console.WriteLine(Inv($"| reactivation: next report of {reactLat.Count:N0} pumps ({active0:N0} active before) | {reactTime.TotalSeconds:N1} s ({reactLat.Count / reactTime.TotalSeconds:N0} pumps/s), platform CPU {reactCpu * 1000 / reactLat.Count:N2} ms per pump, p50 / p99 {P([.. reactLat], 0.5):N0} / {P([.. reactLat], 0.99):N0} ms; active after {mAfter.ActivePumps:N0} |"));
            }

            Console.WriteLine(Inv($"| PostgreSQL tables at the end | {tables} |"));
            if (live0 is not null && liveEnd is not null && mEndDumped is not null && mBase is not null)
            {
                Console.WriteLine();
                LiveHeap.PrintGrowth(live0, liveEnd, mEndDumped.ActivePumps - mBase.ActivePumps, 20, Console.WriteLine);
            }
            return 0;
        }
        finally
        {
            if (!platform.HasExited)
            {
                platform.Kill(entireProcessTree: true);
            }
        }
    }

    private sealed record Metrics(double HeapBytes, double ActivePumps, double DependencyFailures);

    // The platform's own Prometheus endpoint: the runtime's heap after the last collection (all generations) and the
    // silo's active pump grains.
    private static async Task<Metrics> ScrapeAsync(HttpClient http, string url)
    {
        var text = await http.GetStringAsync(url);
        double heap = 0, active = 0, dependency = 0;
        foreach (var line in text.Split('\n'))
        {
            if (line.StartsWith("dotnet_gc_last_collection_heap_size_bytes", StringComparison.Ordinal))
            {
                heap += Value(line);
            }
            else if (line.StartsWith("pumpfleet_pumps_active", StringComparison.Ordinal))
            {
                active += Value(line);
            }
            else if (line.StartsWith("pumpfleet_gateway_dependency_failures", StringComparison.Ordinal))
            {
                dependency += Value(line);
            }
        }

        return new Metrics(heap, active, dependency);
        static double Value(string line) => double.Parse(line[(line.LastIndexOf(' ') + 1)..], CultureInfo.InvariantCulture);
    }

    private static async Task<string> TableBytesAsync(NpgsqlDataSource ds)
    {
        await using var cmd = ds.CreateCommand("""
            SELECT string_agg(format('%s %s', relname, pg_size_pretty(pg_total_relation_size(c.oid))), ', ' ORDER BY pg_total_relation_size(c.oid) DESC)
            FROM (SELECT oid, relname FROM pg_class WHERE relkind IN ('r', 'p') AND relnamespace = 'public'::regnamespace
                  ORDER BY pg_total_relation_size(oid) DESC LIMIT 6) c
            """);
        return (string)(await cmd.ExecuteScalarAsync())!;
    }

    private static async Task<TimeSpan> RunCommandAsync(string dll, string[] args, Dictionary<string, string> env)
    {
        var psi = new ProcessStartInfo("dotnet", [dll, .. args]) { WorkingDirectory = Path.GetDirectoryName(dll)!, RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var (k, v) in env)
        {
            psi.Environment[k] = v;
        }

        var sw = Stopwatch.StartNew();
        using var p = Process.Start(psi)!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        await p.WaitForExitAsync();
        Console.Write(await stdout);
        await Console.Error.WriteAsync(await stderr);
        return p.ExitCode == 0 ? sw.Elapsed : throw new InvalidOperationException($"silo {string.Join(' ', args)} exited {p.ExitCode}");
    }

    private static Process StartPlatform(string dll, Dictionary<string, string> env, string logPath)
    {
        var log = new StreamWriter(logPath) { AutoFlush = true };
        void Log(string line)
        {
            lock (log)
            {
                log.WriteLine(line);
            }
        }

        var psi = new ProcessStartInfo("dotnet", [dll]) { WorkingDirectory = Path.GetDirectoryName(dll)!, RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var (k, v) in env)
        {
            psi.Environment[k] = v;
        }

        var p = Process.Start(psi)!;
        // Only what says a hub or the process is in trouble (the run's own start logs warnings of fleet jobs that
        // find the cluster still starting; the full log is not kept).
        p.OutputDataReceived += (_, e) =>
        {
            if (e.Data is { } d)
            {
                Log(d);
                if (d.Contains("not acknowledged", StringComparison.Ordinal) || d.StartsWith("crit", StringComparison.Ordinal) || d.Contains("OutOfMemory", StringComparison.Ordinal))
                {
                    Console.Error.WriteLine("platform: " + d);
                }
            }
        };
        p.ErrorDataReceived += (_, e) =>
        {
            if (e.Data is { } d)
            {
                Log("stderr: " + d);
                if (d.Contains("Unhandled", StringComparison.Ordinal) || d.Contains("OutOfMemory", StringComparison.Ordinal))
                {
                    Console.Error.WriteLine("platform: " + d);
                }
            }
        };

        p.BeginOutputReadLine();
        p.BeginErrorReadLine();
        return p;
    }

    private static async Task WaitReadyAsync(HttpClient http, string url, TimeSpan timeout)
    {
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
            catch (Exception e) when (e is HttpRequestException or TaskCanceledException)
            {
                // Not listening yet.
            }

            await Task.Delay(500);
        }

        throw new TimeoutException($"{url} not ready after {timeout}.");
    }

    private static int IntArg(string[] args, string name, int fallback)
    {
        var i = Array.IndexOf(args, name);
        return i >= 0 && i + 1 < args.Length ? int.Parse(args[i + 1], CultureInfo.InvariantCulture) : fallback;
    }

    private static string StringArg(string[] args, string name, string fallback)
    {
        var i = Array.IndexOf(args, name);
        return i >= 0 && i + 1 < args.Length ? args[i + 1] : fallback;
    }

    private static string LoadAverage() => File.ReadAllText("/proc/loadavg").Trim();

    private static string Inv(FormattableString s) => s.ToString(CultureInfo.InvariantCulture);

    private static double P(double[] sorted, double q) => sorted.Length == 0 ? double.NaN : sorted[Math.Min(sorted.Length - 1, (int)(q * sorted.Length))];

    private static int FreePort()
    {
        using var l = new TcpListener(IPAddress.Loopback, 0);
        l.Start();
        return ((IPEndPoint)l.LocalEndpoint).Port;
    }

    private static double Rss(int pid) =>
        File.ReadAllLines($"/proc/{pid}/status").Where(l => l.StartsWith("VmRSS:", StringComparison.Ordinal))
            .Select(l => long.Parse(l.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], CultureInfo.InvariantCulture) / 1024.0).First();

    private static double CpuSeconds(int pid)
    {
        var f = File.ReadAllText($"/proc/{pid}/stat").Split(' ');
        return (long.Parse(f[13], CultureInfo.InvariantCulture) + long.Parse(f[14], CultureInfo.InvariantCulture)) / 100.0;
    }

    // The private server's CPU only (other PostgreSQL servers on the shared machine are not counted): its postmaster,
    // with the time of the children it has reaped, and its live children (the backends and background workers).
    internal static double PostgresCpuSeconds(string dataDir)
    {
        var stats = new List<string[]>();
        var postmaster = -1;
        foreach (var d in Directory.GetDirectories("/proc").Where(d => int.TryParse(Path.GetFileName(d), out _)))
        {
            try
            {
                var stat = File.ReadAllText(Path.Combine(d, "stat"));
                // Fields after the command name, which is in parentheses: [0] state, [1] ppid, [11] utime, [12] stime, [13] cutime, [14] cstime.
                var f = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
                stats.Add([Path.GetFileName(d), .. f]);
                if (postmaster < 0 && File.ReadAllText(Path.Combine(d, "cmdline")).Replace('\0', ' ').Contains(dataDir, StringComparison.Ordinal))
                {
                    postmaster = int.Parse(Path.GetFileName(d), CultureInfo.InvariantCulture);
                }
            }
            catch (IOException)
            {
                // The process ended while we looked.
            }
        }

        double total = 0;
        var pm = postmaster.ToString(CultureInfo.InvariantCulture);
        foreach (var f in stats)
        {
            double L(int i) => long.Parse(f[i + 1], CultureInfo.InvariantCulture) / 100.0;
            if (f[0] == pm)
            {
                total += L(11) + L(12) + L(13) + L(14);
            }
            else if (f[2] == pm)
            {
                total += L(11) + L(12);
            }
        }

        return total;
    }
}
