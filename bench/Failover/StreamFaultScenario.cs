using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Npgsql;
using Orleans.Streams;
using PumpFleet.Clustering;
using PumpFleet.EventStore;
using PumpFleet.EventStore.Local;
using PumpFleet.EventStore.Log;
using PumpFleet.Streaming;

namespace PumpFleet.Failover;

/// <summary>What one stream-delivery fault run found.</summary>
public sealed record StreamFaultReport(
    long Committed, long DeliveredDistinct, long Deliveries, int StreamsIncomplete, TimeSpan KillRecovery, TimeSpan PostgresDown,
    TimeSpan PostgresRecovery, int WriterFailures)
{
    /// <inheritdoc />
    public override string ToString() => string.Create(CultureInfo.InvariantCulture,
        $"committed {Committed}, delivered {DeliveredDistinct} distinct ({Deliveries} deliveries, {Deliveries - DeliveredDistinct} redelivered), streams incomplete {StreamsIncomplete}; " +
        $"every partition delivering again {KillRecovery.TotalSeconds:F2} s after the silo SIGKILL; PostgreSQL down {PostgresDown.TotalSeconds:F2} s, every partition delivering again {PostgresRecovery.TotalSeconds:F2} s after it was back; writer failures {WriterFailures}");
}

/// <summary>
/// Delivery under faults, full form (issue 14): two silo processes (AdoNet clustering, the <c>pumpfleet-log</c> provider,
/// pub-sub state in PostgreSQL) over one private PostgreSQL; this process is an Orleans client holding one explicit
/// subscription per partition stream (what a dashboard holds) and counts deliveries by (stream, version); a writer
/// appends to 64 streams all the time. In one run a silo is SIGKILLed and PostgreSQL is restarted; then the writer
/// stops and the count must equal what the log holds. The short form is tests/Streaming.Tests'
/// <c>DeliveryUnderFaultsTests</c> (in-process cluster).
/// </summary>
public static class StreamFaultScenario
{
    /// <summary>Runs once; every process it started is gone when it returns.</summary>
    public static async Task<StreamFaultReport> RunAsync(string siloDll, PrivatePostgres pg, string connectionString, Action<string> progress, CancellationToken ct = default)
    {
        var clusterId = "streamfo-" + Guid.NewGuid().ToString("N")[..8];
        var step = TimeSpan.FromMinutes(4);
        var silos = new List<SiloProcess>();
        IHost? client = null;
        await using var ds = NpgsqlDataSource.Create(connectionString);
        var store = new NpgsqlEventStore(ds);
        // Four streams in every partition, so every queue has work before and after each fault.
        var streams = Enumerable.Range(0, 4 * LogPartitioning.Count).Select(i => StreamIn(i % LogPartitioning.Count)).ToList();
        var counter = new DeliveryCounter();
        var writer = new StreamWriter(store, streams);
        try
        {
            for (var i = 0; i < 2; i++)
            {
                silos.Add(SiloProcess.Start(siloDll, connectionString, clusterId, FailoverScenario.FreePort(), FailoverScenario.FreePort()));
            }

            await FailoverScenario.WaitAsync(async () =>
            {
                FailoverScenario.ThrowIfExited(silos);
                return await CountActiveAsync(ds, clusterId) == 2;
            }, step, "two silos Active", ct);
            client = await StartClientAsync(connectionString, clusterId, ct);
            var provider = client.Services.GetRequiredService<IClusterClient>().GetStreamProvider(LogStreams.ProviderName);
            foreach (var id in LogStreams.AllPartitions())
            {
                await provider.GetStream<CommittedEvent>(id).SubscribeAsync(counter);
            }

            progress($"cluster {clusterId}: silos {string.Join(", ", silos.Select(x => x.Pid))}; 16 partition subscriptions; writer on {streams.Count} streams");
            writer.Start();
            await FailoverScenario.WaitAsync(() => Task.FromResult(counter.Partitions(DateTimeOffset.MinValue) == LogPartitioning.Count), step, "every partition delivering", ct);

            // A silo SIGKILL: its queues and pub-sub grains move to the survivor.
            // "Delivering again" counts only events appended after the fault: a delivery that was already on its way when
            // the fault struck does not show that the partition recovered (it hid a 30-s stall behind the kill until
            // 2026-11-30, which then showed up as the time after the PostgreSQL restart).
            var killAt = DateTimeOffset.UtcNow;
            counter.Mark(killAt);
            progress($"SIGKILL silo {silos[1].SiloPort} (pid {silos[1].Pid})");
            silos[1].Kill();
            await FailoverScenario.WaitAsync(() => Task.FromResult(counter.FreshPartitions == LogPartitioning.Count), step, "every partition delivering after the kill", ct);
            var killRecovery = DateTimeOffset.UtcNow - killAt;
            progress($"every partition delivering events appended after the kill {killRecovery.TotalSeconds:F2} s after it; first such delivery per partition (s): {counter.DescribeFresh(killAt)}");

            // A PostgreSQL restart, down until the writer felt it.
            var failures = writer.Failures;
            var downAt = DateTimeOffset.UtcNow;
            await pg.StopAsync();
            await FailoverScenario.WaitAsync(() => Task.FromResult(writer.Failures > failures), step, "an append to fail while PostgreSQL is down", ct);
            await pg.RestartAsync();
            var backAt = DateTimeOffset.UtcNow;
            counter.Mark(backAt);
            await FailoverScenario.WaitAsync(() => Task.FromResult(counter.FreshPartitions == LogPartitioning.Count), step, "every partition delivering after the restart", ct);
            var pgRecovery = DateTimeOffset.UtcNow - backAt;
            progress($"PostgreSQL down {(backAt - downAt).TotalSeconds:F2} s ({downAt:HH:mm:ss.fff}–{backAt:HH:mm:ss.fff} UTC); every partition delivering events appended after it was back {pgRecovery.TotalSeconds:F2} s after it");
            // Where the time went: the writer's first commit after the restart, and each partition's first fresh delivery.
            progress($"  writer's first commit after a failure, after the restart: {(writer.FirstSuccessAfter(downAt) - backAt)?.TotalSeconds:F2} s; first such delivery per partition (s): {counter.DescribeFresh(backAt)}");

            await writer.StopAsync();
            Dictionary<string, long> committed = [];
            await FailoverScenario.WaitAsync(async () =>
            {
                committed = await CommittedAsync(store, streams);
                return streams.All(s => counter.Complete(s, committed.GetValueOrDefault(s)));
            }, step, "every committed event delivered", ct);
            await SaveLogsAsync(silos, progress);
            return new StreamFaultReport(committed.Values.Sum(), counter.Distinct, counter.Deliveries,
                streams.Count(s => !counter.Complete(s, committed.GetValueOrDefault(s))), killRecovery, backAt - downAt, pgRecovery, writer.Failures);
        }
        catch (Exception e) when (e is TimeoutException or InvalidOperationException)
        {
            // The whole silo logs go to files (the message keeps their tails), and the streams still behind are named
            // with the versions they miss, so a stall can be told from a hole.
            var dir = Directory.CreateTempSubdirectory("pumpfleet-stream-faults-").FullName;
            foreach (var x in silos)
            {
                await File.WriteAllTextAsync(Path.Combine(dir, $"silo-{x.SiloPort}.log"), x.Log, CancellationToken.None);
            }

            var committedNow = await CommittedAsync(store, streams);
            var behind = streams.Where(s => !counter.Complete(s, committedNow.GetValueOrDefault(s)))
                .Select(s => $"partition {LogPartitioning.PartitionOf(s)} {s}: committed {committedNow.GetValueOrDefault(s)}, {counter.Describe(s)}");
            var logs = string.Join("\n", silos.Select(x => $"--- silo {x.SiloPort} (exited: {x.HasExited})\n{(x.Log.Length <= 3000 ? x.Log : x.Log[^3000..])}"));
            throw new InvalidOperationException(
                $"{e.Message}\nstreams behind:\n  {string.Join("\n  ", behind)}\nsilo logs in {dir}\n{logs}", e);
        }
        finally
        {
            await writer.StopAsync();
            if (client is not null)
            {
                await client.StopAsync(CancellationToken.None);
                client.Dispose();
            }

            foreach (var silo in silos)
            {
                await silo.DisposeAsync();
            }
        }
    }

    // PUMPFLEET_STREAM_FAULTS_LOGS=1 keeps the silo logs of a run that passed too (to place a slow recovery).
    private static async Task SaveLogsAsync(List<SiloProcess> silos, Action<string> progress)
    {
        if (Environment.GetEnvironmentVariable("PUMPFLEET_STREAM_FAULTS_LOGS") is not { Length: > 0 })
        {
            return;
        }

        var dir = Directory.CreateTempSubdirectory("pumpfleet-stream-faults-").FullName;
        foreach (var x in silos)
        {
            await File.WriteAllTextAsync(Path.Combine(dir, $"silo-{x.SiloPort}.log"), x.Log, CancellationToken.None);
        }

        progress($"silo logs in {dir}");
    }

    private static string StreamIn(int partition)
    {
        while (true)
        {
            var id = $"SF-{Guid.NewGuid():N}"[..16].ToUpperInvariant();
            if (LogPartitioning.PartitionOf(id) == partition)
            {
                return id;
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
        builder.UseOrleansClient(client => client.UsePumpFleetClustering(builder.Configuration, connectionString).AddPumpFleetLogStreams());
        var host = builder.Build();
        await host.StartAsync(ct);
        return host;
    }

    // What the log holds, read through the store (only src/EventStore names the event tables).
    private static async Task<Dictionary<string, long>> CommittedAsync(NpgsqlEventStore store, List<string> streams)
    {
        var result = new Dictionary<string, long>(StringComparer.Ordinal);
        try
        {
            foreach (var s in streams)
            {
                long v = 0;
                await foreach (var e in store.ReadStreamAsync(s))
                {
                    v = e.Version;
                }

                result[s] = v;
            }

            return result;
        }
        catch (NpgsqlException)
        {
            return [];
        }
    }

    private static async Task<long> CountActiveAsync(NpgsqlDataSource ds, string clusterId)
    {
        try
        {
            await using var cmd = ds.CreateCommand("SELECT count(*) FROM pf_orleans_membership WHERE deployment_id = $1 AND status = 3");
            cmd.Parameters.Add(new() { Value = clusterId });
            return (long)(await cmd.ExecuteScalarAsync())!;
        }
        catch (PostgresException e) when (e.SqlState == PostgresErrorCodes.UndefinedTable)
        {
            return 0;
        }
    }

    /// <summary>The counting consumer: distinct versions per stream, and when each partition last delivered.</summary>
    private sealed class DeliveryCounter : IAsyncObserver<CommittedEvent>
    {
        private readonly ConcurrentDictionary<string, ConcurrentDictionary<long, byte>> _versions = new(StringComparer.Ordinal);
        private readonly ConcurrentDictionary<int, DateTimeOffset> _lastByPartition = new();
        private ConcurrentDictionary<int, DateTimeOffset> _fresh = new();
        private DateTimeOffset _mark = DateTimeOffset.MaxValue;
        private long _deliveries;

        /// <summary>From now on, records each partition's first delivery of an event appended after <paramref name="at"/>.</summary>
        public void Mark(DateTimeOffset at)
        {
            _fresh = new();
            _mark = at;
        }

        /// <summary>Partitions that delivered an event appended after the last <see cref="Mark"/>.</summary>
        public int FreshPartitions => _fresh.Count;

        /// <summary>Each partition's first delivery of an event appended after the mark, in seconds after <paramref name="from"/>.</summary>
        public string DescribeFresh(DateTimeOffset from) =>
            string.Join(", ", _fresh.OrderBy(x => x.Key).Select(x => string.Create(CultureInfo.InvariantCulture, $"{x.Key}:{(x.Value - from).TotalSeconds:F2}")));

        public long Deliveries => Interlocked.Read(ref _deliveries);

        public long Distinct => _versions.Values.Sum(v => (long)v.Count);

        /// <summary>Partitions that delivered something after <paramref name="since"/>.</summary>
        public int Partitions(DateTimeOffset since) => _lastByPartition.Values.Count(t => t > since);

        /// <summary>What a stream got: distinct versions, the highest, and the first versions missing below it.</summary>
        public string Describe(string stream)
        {
            if (!_versions.TryGetValue(stream, out var v) || v.IsEmpty)
            {
                return "nothing delivered";
            }

            var max = v.Keys.Max();
            var missing = Enumerable.Range(1, (int)max).Where(x => !v.ContainsKey(x)).Take(10).ToList();
            return $"delivered {v.Count} distinct up to {max}" + (missing.Count == 0 ? "" : $", missing {string.Join(", ", missing)}");
        }

        /// <summary>Versions 1…<paramref name="committed"/> all delivered.</summary>
        public bool Complete(string stream, long committed) =>
            committed == 0 || (_versions.TryGetValue(stream, out var v) && v.Count == committed && v.Keys.Max() == committed);

        public Task OnNextAsync(CommittedEvent item, StreamSequenceToken? token = null)
        {
            Interlocked.Increment(ref _deliveries);
            _versions.GetOrAdd(item.StreamId, _ => new()).TryAdd(item.Version, 0);
            var now = DateTimeOffset.UtcNow;
            _lastByPartition[LogPartitioning.PartitionOf(item.StreamId)] = now;
            if (item.ReceivedAt > _mark)
            {
                _fresh.TryAdd(LogPartitioning.PartitionOf(item.StreamId), now);
            }
            return Task.CompletedTask;
        }

        public Task OnCompletedAsync() => Task.CompletedTask;

        public Task OnErrorAsync(Exception ex) => Task.CompletedTask;
    }

    /// <summary>Appends 3 events at a time round-robin until stopped; after a failure it re-reads the stream's version.</summary>
    private sealed class StreamWriter(NpgsqlEventStore store, List<string> streams)
    {
        private readonly CancellationTokenSource _stop = new();
        private readonly Dictionary<string, long?> _versions = streams.ToDictionary(s => s, _ => (long?)0, StringComparer.Ordinal);
        private Task _run = Task.CompletedTask;
        private readonly ConcurrentQueue<DateTimeOffset> _recoveries = new();
        private int _failures;
        private bool _failing;

        public int Failures => Volatile.Read(ref _failures);

        /// <summary>The first successful append after a failure, at or after <paramref name="since"/>.</summary>
        public DateTimeOffset? FirstSuccessAfter(DateTimeOffset since) => _recoveries.Where(t => t >= since).Cast<DateTimeOffset?>().FirstOrDefault();

        public void Start() => _run = Task.Run(RunAsync);

        public async Task StopAsync()
        {
            await _stop.CancelAsync();
#pragma warning disable VSTHRD003 // the writer's own loop, started by Start on the thread pool; no context to deadlock on
            await _run;
#pragma warning restore VSTHRD003
        }

        private async Task RunAsync()
        {
            while (!_stop.IsCancellationRequested)
            {
                foreach (var s in streams)
                {
                    if (_stop.IsCancellationRequested)
                    {
                        return;
                    }

                    try
                    {
                        var version = _versions[s] ?? await CurrentVersionAsync(s);
                        var events = Enumerable.Range(1, 3).Select(i => new EventToAppend(Guid.NewGuid(), "bench.event",
                            $$"""{"n":{{version + i}}}""", null, null, DateTimeOffset.UtcNow)).ToList();
                        _versions[s] = (await store.AppendAsync(s, version, events)).NextExpectedVersion;
                        if (_failing)
                        {
                            _failing = false;
                            _recoveries.Enqueue(DateTimeOffset.UtcNow);
                        }
                    }
                    catch (Exception e) when (e is NpgsqlException or WrongExpectedVersionException or TimeoutException or InvalidOperationException)
                    {
                        _versions[s] = null;
                        _failing = true;
                        Interlocked.Increment(ref _failures);
                        await Task.Delay(TimeSpan.FromMilliseconds(50), CancellationToken.None);
                    }
                }
            }
        }

        private async Task<long> CurrentVersionAsync(string s)
        {
            long v = 0;
            await foreach (var e in store.ReadStreamAsync(s))
            {
                v = e.Version;
            }

            return v;
        }
    }
}
