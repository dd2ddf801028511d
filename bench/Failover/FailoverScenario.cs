using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Npgsql;
using Orleans.Configuration;
using Orleans.Runtime;
using PumpFleet.Clustering;
using PumpFleet.EventStore.Benchmarks;

namespace PumpFleet.Failover;

/// <summary>How the chosen silo leaves.</summary>
public enum StopMode
{
    /// <summary>SIGKILL: a crash; the others must detect it by probing.</summary>
    Kill,

    /// <summary>SIGTERM: a graceful stop (rolling update, scale-in); the silo deactivates its grains and leaves.</summary>
    Terminate,
}

/// <summary>Parameters of one run.</summary>
public sealed record FailoverSettings
{
    /// <summary>Path of <c>PumpFleet.Silo.dll</c>.</summary>
    public required string SiloDll { get; init; }
    /// <summary>A migrated PumpFleet database.</summary>
    public required string ConnectionString { get; init; }
    /// <summary>Kill or graceful stop.</summary>
    public StopMode Mode { get; init; } = StopMode.Kill;
    /// <summary>Silo processes.</summary>
    public int Silos { get; init; } = 3;
    /// <summary>Simulated pumps (one hub each).</summary>
    public int Pumps { get; init; } = 30;
    /// <summary>Events per batch.</summary>
    public int BatchSize { get; init; } = 5;
    /// <summary>Acknowledged batches every pump must have before the fault.</summary>
    public int WarmupAcksPerPump { get; init; } = 5;
    /// <summary>How long the load keeps running after the last victim pump recovered.</summary>
    public TimeSpan AfterRecovery { get; init; } = TimeSpan.FromSeconds(3);
    /// <summary>Give up when a step takes longer than this.</summary>
    public TimeSpan StepTimeout { get; init; } = TimeSpan.FromSeconds(90);
    /// <summary>Progress lines.</summary>
    public Action<string> Progress { get; init; } = _ => { };
}

/// <summary>What a run showed.</summary>
public sealed record FailoverReport
{
    /// <summary>Kill or graceful stop.</summary>
    public required StopMode Mode { get; init; }
    /// <summary>Silos in the membership table as Active before the fault (from PostgreSQL).</summary>
    public required int ActiveSilosBefore { get; init; }
    /// <summary>Active hosts the cluster itself reported before the fault (management grain).</summary>
    public required int HostsSeenByCluster { get; init; }
    /// <summary>Silos that held pump activations before the fault.</summary>
    public required int SilosHoldingPumps { get; init; }
    /// <summary>Pumps that lived on the stopped silo.</summary>
    public required int VictimPumps { get; init; }
    /// <summary>Victim pumps active on a surviving silo afterwards.</summary>
    public required int VictimPumpsActiveElsewhere { get; init; }
    /// <summary>Membership status of the stopped silo afterwards (6 = Dead).</summary>
    public required int StoppedSiloStatus { get; init; }
    /// <summary>Distinct events the hubs sent (sum of highest seq sent).</summary>
    public required long EventsSent { get; init; }
    /// <summary>Events acknowledged (sum of committedSeq).</summary>
    public required long EventsAcked { get; init; }
    /// <summary>Rows in the event table with a seq for these pumps.</summary>
    public required long RowsStored { get; init; }
    /// <summary>Distinct (serial, seq) stored.</summary>
    public required long DistinctStored { get; init; }
    /// <summary>Acknowledged events not found in the event table.</summary>
    public required long AckedButMissing { get; init; }
    /// <summary>Calls made including resends.</summary>
    public required long Attempts { get; init; }
    /// <summary>Calls that failed or timed out (then resent).</summary>
    public required long Failures { get; init; }
    /// <summary>Resent events the grain recognised as already stored.</summary>
    public required long DuplicatesDropped { get; init; }
    /// <summary>Events refused by domain rules (expected 0).</summary>
    public required long Rejections { get; init; }
    /// <summary>Per victim pump: fault → first ack of a call started after the fault.</summary>
    public required IReadOnlyList<TimeSpan> VictimRecovery { get; init; }
    /// <summary>Per other pump, the same measure (they should barely notice).</summary>
    public required IReadOnlyList<TimeSpan> OtherRecovery { get; init; }

    /// <summary>Median of <see cref="VictimRecovery"/>.</summary>
    public TimeSpan VictimMedian => Median(VictimRecovery);
    /// <summary>Maximum of <see cref="VictimRecovery"/>.</summary>
    public TimeSpan VictimMax => VictimRecovery.Count == 0 ? TimeSpan.Zero : VictimRecovery.Max();

    /// <inheritdoc />
    public override string ToString() => string.Create(CultureInfo.InvariantCulture, $"""
        mode {Mode}: {ActiveSilosBefore} active silos in PostgreSQL, {HostsSeenByCluster} seen by the cluster, pumps on {SilosHoldingPumps} silos
        victims: {VictimPumps} pumps, {VictimPumpsActiveElsewhere} active elsewhere afterwards; stopped silo status {StoppedSiloStatus}
        events: sent {EventsSent}, acked {EventsAcked}, rows {RowsStored}, distinct (serial, seq) {DistinctStored}, acked-but-missing {AckedButMissing}
        calls: {Attempts} ({Failures} failed and resent, {DuplicatesDropped} resent events dropped as duplicates, {Rejections} rejections)
        victim recovery (fault -> first ack): median {VictimMedian.TotalSeconds:F2} s, max {VictimMax.TotalSeconds:F2} s; other pumps: median {Median(OtherRecovery).TotalSeconds:F2} s, max {(OtherRecovery.Count == 0 ? 0 : OtherRecovery.Max().TotalSeconds):F2} s
        """);

    private static TimeSpan Median(IReadOnlyList<TimeSpan> xs)
    {
        if (xs.Count == 0)
        {
            return TimeSpan.Zero;
        }

        var sorted = xs.OrderBy(x => x).ToArray();
        return sorted.Length % 2 == 1 ? sorted[sorted.Length / 2] : (sorted[(sorted.Length / 2) - 1] + sorted[sorted.Length / 2]) / 2;
    }
}

/// <summary>Starts real silo processes over PostgreSQL membership, drives load, stops one silo, and accounts for every event.</summary>
public static class FailoverScenario
{
    /// <summary>Runs the scenario once. Every process it started is gone when it returns.</summary>
    public static async Task<FailoverReport> RunAsync(FailoverSettings s, CancellationToken ct = default)
    {
        var clusterId = "failover-" + Guid.NewGuid().ToString("N")[..8];
        var silos = new List<SiloProcess>();
        try
        {
            for (var i = 0; i < s.Silos; i++)
            {
                silos.Add(SiloProcess.Start(s.SiloDll, s.ConnectionString, clusterId, FreePort(), FreePort()));
            }

            s.Progress($"started {s.Silos} silo processes (pids {string.Join(", ", silos.Select(x => x.Pid))}), cluster {clusterId}");
            await using var ds = NpgsqlDataSource.Create(s.ConnectionString);
            await WaitAsync(async () =>
            {
                ThrowIfExited(silos);
                return await CountActiveAsync(ds, clusterId) == s.Silos;
            }, s.StepTimeout, "all silos Active in the membership table", ct);
            var activeBefore = (int)await CountActiveAsync(ds, clusterId);
            s.Progress($"{activeBefore} silos Active in pf_orleans_membership");

            using var client = await StartClientAsync(s.ConnectionString, clusterId, ct);
            var grains = client.Services.GetRequiredService<IGrainFactory>();
            var management = grains.GetGrain<IManagementGrain>(0);
            var hosts = (await management.GetHosts(onlyActive: true)).Count;

            var serials = Enumerable.Range(1, s.Pumps).Select(i => $"FO{clusterId[9..]}-{i:D3}").ToArray();
            var load = new PumpLoad(grains, serials, s.BatchSize);
            await load.PairAllAsync();
            using var stopLoad = new CancellationTokenSource();
            var running = load.RunAsync(stopLoad.Token);
            await WaitAsync(() => Task.FromResult(load.Progress.Values.All(p => p.Acks >= s.WarmupAcksPerPump)), s.StepTimeout, "warm-up acks", ct);

            var placement = await PlacementAsync(management, serials);
            var byPort = placement.GroupBy(kv => kv.Value).ToDictionary(g => g.Key, g => g.Select(kv => kv.Key).ToArray());
            var victim = silos.Where(x => byPort.ContainsKey(x.SiloPort)).MaxBy(x => byPort[x.SiloPort].Length)
                         ?? throw new InvalidOperationException("no silo holds a pump");
            var victimPumps = byPort[victim.SiloPort];
            s.Progress($"pumps per silo port: {string.Join(", ", byPort.Select(kv => $"{kv.Key}={kv.Value.Length}"))}; stopping silo {victim.SiloPort} (pid {victim.Pid}) by {s.Mode}");

            load.Mark();
            if (s.Mode == StopMode.Kill)
            {
                victim.Kill();
            }
            else
            {
                await victim.TerminateAsync();
            }

            await WaitAsync(() => Task.FromResult(victimPumps.All(v => load.Progress[v].RecoveredAfter is not null)), s.StepTimeout, "every victim pump acknowledged again", ct);
            s.Progress("every pump of the stopped silo was acknowledged again");
            // Wait for what is asserted, with the load still calling the pumps: an ack can come from the stopping
            // silo before it deactivates its grains, so "acknowledged again" alone does not mean "moved" yet.
            var elsewhere = 0;
            var placed = Stopwatch.StartNew();
            while (true)
            {
                try
                {
                    var now = await PlacementAsync(management, serials);
                    elsewhere = victimPumps.Count(v => now.TryGetValue(v, out var port) && port != victim.SiloPort);
                }
                catch (Exception e) when (e is TimeoutException or OrleansException)
                {
                    // The management grain itself may have lived on the stopped silo until membership declares it dead.
                    s.Progress($"placement not readable yet: {e.GetType().Name}");
                }

                if (elsewhere == victimPumps.Length || placed.Elapsed > s.StepTimeout)
                {
                    break; // on timeout the report carries the count and the test's assertion names it
                }

                await Task.Delay(TimeSpan.FromMilliseconds(200), ct);
            }

            s.Progress($"{elsewhere} of {victimPumps.Length} victim pumps active on surviving silos");
            var recovered = Stopwatch.StartNew();
            await WaitAsync(() => Task.FromResult(recovered.Elapsed >= s.AfterRecovery), s.AfterRecovery + s.StepTimeout, "load after recovery", ct);
            await stopLoad.CancelAsync();
            await running.WaitAsync(s.StepTimeout, ct);

            if (s.Mode == StopMode.Terminate)
            {
                await victim.WaitForExitAsync(ct).WaitAsync(s.StepTimeout, ct);
            }

            var status = 0;
            await WaitAsync(async () => (status = await StatusOfAsync(ds, clusterId, victim.SiloPort)) == 6, s.StepTimeout, "stopped silo marked Dead", ct);

            var progress = load.Progress;
            var stored = await EventTableProbes.StoredSeqsAsync(ds, serials, [.. serials.Select(x => progress[x].CommittedSeq)]);
            var ackedMissing = serials.Sum(serial => progress[serial].CommittedSeq - stored[serial].AckedStored);
            await client.StopAsync(ct);
            return new FailoverReport
            {
                Mode = s.Mode,
                ActiveSilosBefore = activeBefore,
                HostsSeenByCluster = hosts,
                SilosHoldingPumps = byPort.Count,
                VictimPumps = victimPumps.Length,
                VictimPumpsActiveElsewhere = elsewhere,
                StoppedSiloStatus = status,
                EventsSent = progress.Values.Sum(p => p.HighestSent),
                EventsAcked = progress.Values.Sum(p => p.CommittedSeq),
                RowsStored = stored.Values.Sum(x => x.Rows),
                DistinctStored = stored.Values.Sum(x => x.DistinctSeqs),
                AckedButMissing = ackedMissing,
                Attempts = progress.Values.Sum(p => p.Attempts),
                Failures = progress.Values.Sum(p => p.Failures),
                DuplicatesDropped = progress.Values.Sum(p => p.Duplicates),
                Rejections = progress.Values.Sum(p => p.Rejections),
                VictimRecovery = [.. victimPumps.Select(v => progress[v].RecoveredAfter!.Value)],
                OtherRecovery = [.. serials.Except(victimPumps).Select(v => progress[v].RecoveredAfter).OfType<TimeSpan>()],
            };
        }
        catch
        {
            s.Progress("membership rows:\n" + await DumpMembershipAsync(s.ConnectionString, clusterId));
            foreach (var silo in silos)
            {
                s.Progress($"--- silo {silo.SiloPort} (pid {silo.Pid}, exited {silo.HasExited}) log tail:\n{Tail(silo.Log, Environment.GetEnvironmentVariable("PUMPFLEET_SILO_ORLEANS_LOG") is null ? 3000 : 400_000)}");
            }

            throw;
        }
        finally
        {
            foreach (var silo in silos)
            {
                await silo.DisposeAsync();
            }
        }
    }

    private static async Task<IHost> StartClientAsync(string connectionString, string clusterId, CancellationToken ct)
    {
        var builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { DisableDefaults = true });
        builder.Configuration.AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["PumpFleet:Clustering"] = "AdoNet",
            ["Orleans:ClusterId"] = clusterId,
            ["Orleans:ServiceId"] = "pumpfleet-failover",
        });
        builder.UseOrleansClient(client =>
        {
            client.UsePumpFleetClustering(builder.Configuration, connectionString);
            // A hub would time out and resend too; 5 s bounds how long a call to a dead silo can hang.
            client.Configure<ClientMessagingOptions>(o => o.ResponseTimeout = TimeSpan.FromSeconds(5));
        });
        var host = builder.Build();
        await host.StartAsync(ct);
        return host;
    }

    private static async Task<Dictionary<string, int>> PlacementAsync(IManagementGrain management, IReadOnlyCollection<string> serials)
    {
        var wanted = serials.ToHashSet(StringComparer.Ordinal);
        var stats = await management.GetDetailedGrainStatistics();
        var result = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach (var st in stats)
        {
            var key = st.GrainId.Key.ToString();
            if (key is not null && wanted.Contains(key) && st.GrainType.Contains("PumpGrain", StringComparison.Ordinal))
            {
                result[key] = st.SiloAddress.Endpoint.Port;
            }
        }

        return result;
    }

    private static async Task<string> DumpMembershipAsync(string connectionString, string clusterId)
    {
        try
        {
            await using var ds = NpgsqlDataSource.Create(connectionString);
            await using var cmd = ds.CreateCommand("SELECT port, generation, status, i_am_alive_time, suspect_times FROM pf_orleans_membership WHERE deployment_id = $1");
            cmd.Parameters.Add(new() { Value = clusterId });
            await using var r = await cmd.ExecuteReaderAsync();
            var lines = new List<string>();
            while (await r.ReadAsync())
            {
                lines.Add(string.Join(" | ", Enumerable.Range(0, r.FieldCount).Select(i => r.IsDBNull(i) ? "null" : Convert.ToString(r.GetValue(i), CultureInfo.InvariantCulture))));
            }

            return string.Join("\n", lines);
        }
        catch (NpgsqlException e)
        {
            return e.Message;
        }
    }

    private static async Task<long> CountActiveAsync(NpgsqlDataSource ds, string clusterId)
    {
        await using var cmd = ds.CreateCommand("SELECT count(*) FROM pf_orleans_membership WHERE deployment_id = $1 AND status = 3");
        cmd.Parameters.Add(new() { Value = clusterId });
        return (long)(await cmd.ExecuteScalarAsync())!;
    }

    private static async Task<int> StatusOfAsync(NpgsqlDataSource ds, string clusterId, int port)
    {
        await using var cmd = ds.CreateCommand("SELECT status FROM pf_orleans_membership WHERE deployment_id = $1 AND port = $2 ORDER BY generation DESC LIMIT 1");
        cmd.Parameters.Add(new() { Value = clusterId });
        cmd.Parameters.Add(new() { Value = port });
        return (int)(await cmd.ExecuteScalarAsync() ?? 0);
    }

    internal static async Task WaitAsync(Func<Task<bool>> condition, TimeSpan timeout, string what, CancellationToken ct)
    {
        var sw = Stopwatch.StartNew();
        while (!await condition())
        {
            if (sw.Elapsed > timeout)
            {
                throw new TimeoutException($"Timed out after {timeout} waiting for: {what}");
            }

            await Task.Delay(TimeSpan.FromMilliseconds(50), ct);
        }
    }

    internal static void ThrowIfExited(List<SiloProcess> silos)
    {
        foreach (var silo in silos.Where(x => x.HasExited))
        {
            throw new InvalidOperationException($"silo {silo.SiloPort} exited with {silo.ExitCode}");
        }
    }

    internal static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    private static string Tail(string text, int chars) => text.Length <= chars ? text : text[^chars..];

    /// <summary>
    /// <c>src/Silo/bin/&lt;configuration&gt;/net10.0/PumpFleet.Silo.dll</c> of the repository this assembly was built in
    /// (the configuration is taken from this assembly's own output folder).
    /// </summary>
    public static string LocateSiloDll()
    {
        var baseDir = new DirectoryInfo(AppContext.BaseDirectory);
        var configuration = baseDir.Parent?.Name ?? "Debug";
        for (var dir = baseDir; dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "PumpFleet.sln")))
            {
                var dll = Path.Combine(dir.FullName, "src", "Silo", "bin", configuration, baseDir.Name, "PumpFleet.Silo.dll");
                return File.Exists(dll) ? dll : throw new FileNotFoundException($"Build src/Silo ({configuration}) first.", dll);
            }
        }

        throw new DirectoryNotFoundException("PumpFleet.sln not found above " + baseDir.FullName);
    }
}
