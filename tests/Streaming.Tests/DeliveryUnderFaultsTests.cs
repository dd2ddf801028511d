using System.Collections.Concurrent;
using Microsoft.Extensions.Logging.Abstractions;
using Npgsql;
using PumpFleet.Clustering;
using PumpFleet.EventStore;
using PumpFleet.EventStore.Local;
using PumpFleet.EventStore.Log;
using PumpFleet.ReadModels;
using PumpFleet.TestSupport;

namespace PumpFleet.Streaming.Tests;

/// <summary>
/// Delivery under faults, short form (the full run with a silo process SIGKILL is bench/StreamBench's
/// <c>faults</c> mode): events are appended all through a silo kill and a PostgreSQL restart in one run, and a
/// counting consumer on the partition streams ends with every committed event, deduped by stream version, on every
/// partition: nothing lost, no partition stalled.
/// </summary>
public sealed class DeliveryUnderFaultsTests
{
    [Fact]
    public async Task EveryCommittedEvent_IsDelivered_ThroughASiloKill_AndAPostgresRestart()
    {
        var ct = TestContext.Current.CancellationToken;
        // A private server: this test stops it, which must not disturb the other tests' shared server.
        await using var server = await PrivatePostgres.StartAsync(durable: false, ct: ct);
        var cs = await CreateDatabaseAsync(server);
        await using var ds = NpgsqlDataSource.Create(cs);
        var store = new NpgsqlEventStore(ds);
        await using var cluster = await StreamCluster.StartAsync(cs, silos: 2, persistentPubSub: true);

        var streams = Enumerable.Range(0, LogPartitioning.Count)
            .SelectMany(p => new[] { StreamCluster.NewStreamIdIn($"DF{p}A", p), StreamCluster.NewStreamIdIn($"DF{p}B", p) }).ToList();
        await using var writer = new Writer(store, streams);
        writer.Start();

        // Phase 1: delivery runs on two silos.
        await writer.WaitForAppendsAsync(2 * streams.Count);
        await WaitForDeliveryAsync(ds, streams, "before the faults");

        // Phase 2: a silo dies abruptly while the writer keeps appending; its queues move to the survivor.
        await cluster.KillSiloAsync(cluster.Silos[1], ct);
        await writer.WaitForAppendsAsync(writer.Appends + streams.Count);

        // Phase 3: PostgreSQL goes away (appends fail, receivers' reads and LISTEN fail) and comes back.
        await server.StopAsync();
        await writer.WaitForFailuresAsync(writer.Failures + 1);
        await server.RestartAsync();
        await writer.WaitForAppendsAsync(writer.Appends + (2 * streams.Count));
        await writer.StopAsync();

        // Every committed event (what pf_events holds at the end) delivered, deduped by version, on every partition.
        await WaitForDeliveryAsync(ds, streams, "after a silo kill and a PostgreSQL restart");
        Assert.True(writer.Failures > 0, "The writer saw the outage.");
    }

    private static async Task<string> CreateDatabaseAsync(PrivatePostgres server)
    {
        var name = $"df_{Guid.NewGuid():N}";
        await using (var conn = new NpgsqlConnection(server.ConnectionString()))
        {
            await conn.OpenAsync();
            await using var cmd = new NpgsqlCommand($"CREATE DATABASE \"{name}\"", conn);
            await cmd.ExecuteNonQueryAsync();
        }

        var cs = server.ConnectionString(name);
        await using var ds = NpgsqlDataSource.Create(cs);
        await new SchemaMigrator(ds, [new(typeof(CohortTallyGrain).Assembly), new(typeof(PubSubStoreHostingExtensions).Assembly)],
            NullLogger<SchemaMigrator>.Instance).MigrateAsync();
        return cs;
    }

    private static Task WaitForDeliveryAsync(NpgsqlDataSource ds, List<string> streams, string when) =>
        Eventually.TrueAsync(async () =>
        {
            var committed = await CommittedAsync(ds, streams);
            return streams.All(s => Delivered(s).SequenceEqual(Enumerable.Range(1, (int)committed.GetValueOrDefault(s)).Select(v => (long)v)));
        }, TimeSpan.FromSeconds(180), $"every committed event delivered {when}");

    private static async Task<Dictionary<string, long>> CommittedAsync(NpgsqlDataSource ds, List<string> streams)
    {
        try
        {
            await using var cmd = ds.CreateCommand("SELECT stream_id, max(version) FROM pf_events WHERE stream_id = ANY($1) GROUP BY stream_id");
            cmd.Parameters.Add(new() { Value = streams.ToArray() });
            var result = new Dictionary<string, long>(StringComparer.Ordinal);
            await using var r = await cmd.ExecuteReaderAsync();
            while (await r.ReadAsync())
            {
                result[r.GetString(0)] = r.GetInt64(1);
            }

            return result;
        }
        catch (NpgsqlException)
        {
            return [];   // the server is restarting: not yet
        }
    }

    // The partition recorder (an implicit subscriber, Recorder.cs) is the counting consumer: distinct versions per stream.
    private static long[] Delivered(string streamId) =>
        [.. Recorder.ByPartition.Values.SelectMany(q => q).Where(x => x.StreamId == streamId).Select(x => x.Version).Distinct().Order()];

    /// <summary>
    /// Appends 3 events at a time round-robin over the streams until stopped. A failed append (the server is down, or
    /// an ambiguous commit) re-reads the stream's version before the next one, so the log stays dense per stream.
    /// </summary>
    private sealed class Writer(NpgsqlEventStore store, List<string> streams) : IAsyncDisposable
    {
        private readonly CancellationTokenSource _stop = new();
        private readonly ConcurrentDictionary<string, long?> _versions = new(streams.Select(s => KeyValuePair.Create(s, (long?)0)));
        private Task _run = Task.CompletedTask;
        private int _appends;
        private int _failures;

        public int Appends => Volatile.Read(ref _appends);

        public int Failures => Volatile.Read(ref _failures);

        public void Start() => _run = Task.Run(RunAsync);

        public Task WaitForAppendsAsync(int n) =>
            Eventually.TrueAsync(() => Task.FromResult(Appends >= n || _run.IsCompleted), TimeSpan.FromSeconds(180), $"{n} appends");

        public Task WaitForFailuresAsync(int n) =>
            Eventually.TrueAsync(() => Task.FromResult(Failures >= n || _run.IsCompleted), TimeSpan.FromSeconds(60), $"{n} failed appends");

        public async Task StopAsync()
        {
            await _stop.CancelAsync();
            await _run;
        }

        public async ValueTask DisposeAsync()
        {
            await StopAsync();
            _stop.Dispose();
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
                        var result = await StreamCluster.AppendAsync(store, s, version, 3);
                        _versions[s] = result.NextExpectedVersion;
                        Interlocked.Increment(ref _appends);
                    }
                    catch (Exception e) when (e is NpgsqlException or WrongExpectedVersionException or TimeoutException or InvalidOperationException)
                    {
                        _versions[s] = null;
                        Interlocked.Increment(ref _failures);
                        // Back off a little so an outage is not a busy loop (the store needs the server to come back).
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
