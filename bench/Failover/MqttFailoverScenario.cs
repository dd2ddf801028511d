using System.Diagnostics;
using System.Globalization;
using System.Text;
using Microsoft.Extensions.Logging.Abstractions;
using Npgsql;
using PumpFleet.Clustering;
using PumpFleet.EventStore;
using PumpFleet.EventStore.Benchmarks;
using PumpFleet.EventStore.Local;

namespace PumpFleet.Failover;

/// <summary>A fault the MQTT scenario injects.</summary>
public enum MqttFault
{
    /// <summary>SIGKILL of one of the three silos.</summary>
    SiloKill,

    /// <summary>PostgreSQL stopped (fast shutdown) and started again.</summary>
    PostgresRestart,

    /// <summary>SIGKILL of the gateway process, then a new one on the same ports.</summary>
    GatewayKill,
}

/// <summary>Parameters of the MQTT failover scenario.</summary>
public sealed record MqttFailoverSettings
{
    /// <summary>Path of <c>PumpFleet.Silo.dll</c>.</summary>
    public required string SiloDll { get; init; }
    /// <summary>Path of <c>PumpFleet.Gateway.Host.dll</c> (the gateway process).</summary>
    public required string GatewayDll { get; init; }
    /// <summary>The private PostgreSQL (it is restarted by the scenario).</summary>
    public required PrivatePostgres Postgres { get; init; }
    /// <summary>A migrated database on it (<see cref="MqttFailoverScenario.CreateDatabaseAsync"/>).</summary>
    public required string ConnectionString { get; init; }
    /// <summary>Extra settings of the gateway process, as environment variables (e.g. <c>Gateway__Mqtt__IngestTimeout</c>).</summary>
    public IReadOnlyDictionary<string, string> GatewaySettings { get; init; } = new Dictionary<string, string>();
    /// <summary>The faults, in order, in one run.</summary>
    public IReadOnlyList<MqttFault> Faults { get; init; } = [MqttFault.SiloKill, MqttFault.PostgresRestart, MqttFault.GatewayKill];
    /// <summary>Simulated hubs (MQTT clients).</summary>
    public int Hubs { get; init; } = 8;
    /// <summary>Pumps per hub.</summary>
    public int PumpsPerHub { get; init; } = 2;
    /// <summary>Events per batch.</summary>
    public int BatchSize { get; init; } = 5;
    /// <summary>Acks every hub must have received before the first fault, and again after each recovery.</summary>
    public int AcksBetweenFaults { get; init; } = 5;
    /// <summary>Give up when a step takes longer than this.</summary>
    public TimeSpan StepTimeout { get; init; } = TimeSpan.FromSeconds(120);
    /// <summary>Progress lines.</summary>
    public Action<string> Progress { get; init; } = _ => { };
}

/// <summary>What one fault did.</summary>
public sealed record MqttFaultReport
{
    /// <summary>The fault.</summary>
    public required MqttFault Fault { get; init; }
    /// <summary>From the fault to the faulty part being back (0 for a silo kill: the survivors carry on).</summary>
    public required TimeSpan Outage { get; init; }
    /// <summary>Per hub: from the part being back to its first ack of a publish started after the fault.</summary>
    public required IReadOnlyList<TimeSpan> Recovery { get; init; }
    /// <summary>Publishes that failed during this fault (each was resent).</summary>
    public required long FailedPublishes { get; init; }
    /// <summary>Hub connections re-established during this fault (a hub idle at the fault reconnects without a failed publish).</summary>
    public required long Reconnects { get; init; }
    /// <summary>Distinct events the hubs sent so far (sum of the highest seq per pump).</summary>
    public required long EventsSent { get; init; }
    /// <summary>Events acknowledged so far (sum of committedSeq).</summary>
    public required long EventsAcked { get; init; }
    /// <summary>Rows with a seq for these pumps in the event table.</summary>
    public required long RowsStored { get; init; }
    /// <summary>Distinct (serial, seq) stored.</summary>
    public required long DistinctStored { get; init; }
    /// <summary>Acknowledged seqs (1..committedSeq) not in the event table.</summary>
    public required long AckedButMissing { get; init; }

    /// <summary>Sent but not stored.</summary>
    public long Lost => EventsSent - DistinctStored;
    /// <summary>Stored more than once.</summary>
    public long Duplicated => RowsStored - DistinctStored;
    /// <summary>Median of <see cref="Recovery"/>.</summary>
    public TimeSpan RecoveryMedian => Median(Recovery);
    /// <summary>Maximum of <see cref="Recovery"/>.</summary>
    public TimeSpan RecoveryMax => Recovery.Count == 0 ? TimeSpan.Zero : Recovery.Max();

    /// <summary>Every event sent stored exactly once, and nothing acknowledged missing.</summary>
    public bool ExactlyOnce => Lost == 0 && Duplicated == 0 && AckedButMissing == 0 && EventsAcked == EventsSent;

    /// <inheritdoc />
    public override string ToString() => string.Create(CultureInfo.InvariantCulture,
        $"{Fault}: outage {Outage.TotalSeconds:F2} s, first ack after it: median {RecoveryMedian.TotalSeconds:F2} s, max {RecoveryMax.TotalSeconds:F2} s " +
        $"({Recovery.Count} hubs); {FailedPublishes} publishes failed and resent, {Reconnects} reconnects; sent {EventsSent}, acked {EventsAcked}, rows {RowsStored}, " +
        $"distinct {DistinctStored}: lost {Lost}, duplicated {Duplicated}, acked-but-missing {AckedButMissing}");

    internal static TimeSpan Median(IReadOnlyList<TimeSpan> xs)
    {
        if (xs.Count == 0)
        {
            return TimeSpan.Zero;
        }

        var s = xs.Order().ToArray();
        return s.Length % 2 == 1 ? s[s.Length / 2] : (s[(s.Length / 2) - 1] + s[s.Length / 2]) / 2;
    }
}

/// <summary>
/// Faults through the real path: three silo processes and a gateway process over one private PostgreSQL, simulated
/// hubs over MQTT that follow the resend rule, and in one run a SIGKILL of a silo, a PostgreSQL restart and a SIGKILL
/// of the gateway (restarted on the same port). After each fault the load goes on until every hub has been
/// acknowledged again, then the hubs deliver what they sent (no new events) and the store is counted: every event
/// sent stored exactly once, nothing acknowledged missing.
/// </summary>
public static class MqttFailoverScenario
{
    /// <summary>Runs the scenario once; every process it started is gone when it returns.</summary>
    public static async Task<IReadOnlyList<MqttFaultReport>> RunAsync(MqttFailoverSettings s, CancellationToken ct = default)
    {
        var clusterId = "mqttfo-" + Guid.NewGuid().ToString("N")[..8];
        var silos = new List<SiloProcess>();
        GatewayProcess? gateway = null;
        MqttHubLoad? load = null;
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(5) };
        try
        {
            for (var i = 0; i < 3; i++)
            {
                silos.Add(SiloProcess.Start(s.SiloDll, s.ConnectionString, clusterId, FreePort(), FreePort()));
            }

            await using (var ds = NpgsqlDataSource.Create(s.ConnectionString))
            {
                await WaitAsync(async () =>
                {
                    ThrowIfExited(silos);
                    return await CountActiveAsync(ds, clusterId) == 3;
                }, s.StepTimeout, "three silos Active in the membership table", ct);
            }

            var mqttPort = FreePort();
            var httpPort = FreePort();
            gateway = await StartGatewayAsync(s, clusterId, mqttPort, httpPort, http, ct);
            s.Progress($"cluster {clusterId}: silos {string.Join(", ", silos.Select(x => x.Pid))}, gateway {gateway.Pid} on MQTT {mqttPort}");

            load = new MqttHubLoad(s.Hubs, s.PumpsPerHub, s.BatchSize, mqttPort, clusterId[7..13]);
            load.Start();
            await WaitForAcksAsync(load, s, "warm-up", ct);

            var reports = new List<MqttFaultReport>();
            foreach (var fault in s.Faults)
            {
                var failuresBefore = load.Failures;
                var reconnectsBefore = load.Reconnects;
                var faultAt = Stopwatch.GetTimestamp();
                long backAt;
                switch (fault)
                {
                    case MqttFault.SiloKill:
                        var victim = silos.First(x => !x.HasExited);
                        s.Progress($"SIGKILL silo {victim.SiloPort} (pid {victim.Pid})");
                        victim.Kill();
                        backAt = faultAt;
                        break;
                    case MqttFault.PostgresRestart:
                        s.Progress("stopping PostgreSQL");
                        await s.Postgres.StopAsync();
                        // Down until the hubs have felt it (a publish failed), so the outage is real, not a blink.
                        await WaitAsync(() => Task.FromResult(load.Failures > failuresBefore), s.StepTimeout, "a publish to fail while PostgreSQL is down", ct);
                        await s.Postgres.RestartAsync();
                        backAt = Stopwatch.GetTimestamp();
                        s.Progress($"PostgreSQL back after {Stopwatch.GetElapsedTime(faultAt, backAt).TotalSeconds:F2} s");
                        break;
                    default:
                        s.Progress($"SIGKILL gateway (pid {gateway.Pid})");
                        gateway.Kill();
                        await gateway.WaitForExitAsync(ct);
                        await gateway.DisposeAsync();
                        gateway = await StartGatewayAsync(s, clusterId, mqttPort, httpPort, http, ct);
                        backAt = Stopwatch.GetTimestamp();
                        s.Progress($"gateway {gateway.Pid} ready after {Stopwatch.GetElapsedTime(faultAt, backAt).TotalSeconds:F2} s");
                        break;
                }

                await WaitAsync(() => Task.FromResult(load.FirstAckAfter(faultAt, backAt).All(x => x is not null)), s.StepTimeout,
                    $"every hub acknowledged again after {fault}", ct);
                var recovery = load.FirstAckAfter(faultAt, backAt).Select(x => x!.Value).ToArray();
                await WaitForAcksAsync(load, s, $"load after {fault}", ct);

                // Drain: the hubs deliver what they sent, nothing new, then the store is counted.
                load.Generating = false;
                await WaitAsync(() => Task.FromResult(load.Drained), s.StepTimeout, $"every sent event acknowledged after {fault}", ct);
                var report = await AccountAsync(s.ConnectionString, load, fault, Stopwatch.GetElapsedTime(faultAt, backAt), recovery,
                    load.Failures - failuresBefore, load.Reconnects - reconnectsBefore);
                s.Progress(report.ToString());
                reports.Add(report);
                load.Generating = true;
            }

            return reports;
        }
        catch (Exception e) when (e is TimeoutException or InvalidOperationException)
        {
            var logs = new StringBuilder();
            foreach (var silo in silos)
            {
                logs.Append(CultureInfo.InvariantCulture, $"--- silo {silo.SiloPort} (exited: {silo.HasExited})\n{Tail(silo.Log, 3000)}\n");
            }

            if (gateway is not null)
            {
                logs.Append(CultureInfo.InvariantCulture, $"--- gateway (exited: {gateway.HasExited})\n{Tail(gateway.Log, 5000)}\n");
            }

            throw new InvalidOperationException($"{e.Message}\n{logs}", e);
        }
        finally
        {
            if (load is not null)
            {
                await load.DisposeAsync();
            }

            if (gateway is not null)
            {
                await gateway.DisposeAsync();
            }

            foreach (var silo in silos)
            {
                await silo.DisposeAsync();
            }
        }
    }

    /// <summary>Creates and migrates a database for one run (the gateway adds its own tables at start, in Development).</summary>
    public static async Task<string> CreateDatabaseAsync(PrivatePostgres pg, string name)
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

    /// <summary><c>src/Gateway.Host/bin/&lt;configuration&gt;/net10.0/PumpFleet.Gateway.Host.dll</c> of this repository (the gateway process).</summary>
    public static string LocateGatewayDll()
    {
        var silo = FailoverScenario.LocateSiloDll();
        var dll = silo.Replace(Path.Combine("src", "Silo"), Path.Combine("src", "Gateway.Host"), StringComparison.Ordinal)
                      .Replace("PumpFleet.Silo.dll", "PumpFleet.Gateway.Host.dll", StringComparison.Ordinal);
        return File.Exists(dll) ? dll : throw new FileNotFoundException("Build src/Gateway.Host first.", dll);
    }

    private static async Task<GatewayProcess> StartGatewayAsync(MqttFailoverSettings s, string clusterId, int mqttPort, int httpPort, HttpClient http, CancellationToken ct)
    {
        var gateway = GatewayProcess.Start(s.GatewayDll, s.ConnectionString, clusterId, mqttPort, httpPort, s.GatewaySettings);
        await WaitAsync(async () =>
        {
            if (gateway.HasExited)
            {
                throw new InvalidOperationException($"the gateway exited:\n{Tail(gateway.Log, 4000)}");
            }

            return await gateway.IsReadyAsync(http);
        }, s.StepTimeout, "the gateway ready", ct);
        return gateway;
    }

    private static async Task WaitForAcksAsync(MqttHubLoad load, MqttFailoverSettings s, string what, CancellationToken ct)
    {
        var before = load.AckCounts;
        await WaitAsync(() => Task.FromResult(load.AckCounts.Select((n, i) => n - before[i]).All(d => d >= s.AcksBetweenFaults)), s.StepTimeout,
            $"{s.AcksBetweenFaults} acks per hub ({what})", ct);
    }

    private static async Task<MqttFaultReport> AccountAsync(string cs, MqttHubLoad load, MqttFault fault, TimeSpan outage, TimeSpan[] recovery, long failed, long reconnects)
    {
        var pumps = load.Pumps.ToArray();
        await using var ds = NpgsqlDataSource.Create(cs);
        // Summed over the pumps: rows, distinct (serial, seq), and acknowledged seqs 1..committedSeq stored.
        var stored = (await EventTableProbes.StoredSeqsAsync(ds, [.. pumps.Select(p => p.Serial)], [.. pumps.Select(p => p.Committed)])).Values;
        var rowsStored = stored.Sum(x => x.Rows);
        var distinctStored = stored.Sum(x => x.DistinctSeqs);
        var ackedStored = stored.Sum(x => x.AckedStored);
        var acked = pumps.Sum(p => p.Committed);
        return new MqttFaultReport
        {
            Fault = fault,
            Outage = outage,
            Recovery = recovery,
            FailedPublishes = failed,
            Reconnects = reconnects,
            EventsSent = pumps.Sum(p => p.HighestSent),
            EventsAcked = acked,
            RowsStored = rowsStored,
            DistinctStored = distinctStored,
            AckedButMissing = acked - ackedStored,
        };
    }

    private static async Task<long> CountActiveAsync(NpgsqlDataSource ds, string clusterId)
    {
        await using var cmd = ds.CreateCommand("SELECT count(*) FROM pf_orleans_membership WHERE deployment_id = $1 AND status = 3");
        cmd.Parameters.Add(new() { Value = clusterId });
        return (long)(await cmd.ExecuteScalarAsync())!;
    }

    private static async Task WaitAsync(Func<Task<bool>> condition, TimeSpan timeout, string what, CancellationToken ct)
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

    private static void ThrowIfExited(List<SiloProcess> silos)
    {
        foreach (var silo in silos.Where(x => x.HasExited))
        {
            throw new InvalidOperationException($"silo {silo.SiloPort} exited with {silo.ExitCode}:\n{Tail(silo.Log, 3000)}");
        }
    }

    private static int FreePort()
    {
        using var listener = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0);
        listener.Start();
        return ((System.Net.IPEndPoint)listener.LocalEndpoint).Port;
    }

    private static string Tail(string text, int chars) => text.Length <= chars ? text : text[^chars..];
}
