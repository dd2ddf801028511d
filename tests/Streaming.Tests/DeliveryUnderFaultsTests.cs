using System.Collections.Concurrent;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging.Abstractions;
using Npgsql;
using Orleans.Runtime.Providers;
using Orleans.TestingHost;
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
        // Warnings and errors of the silos, stamped, for the failure message (what the provider saw if delivery stalls).
        var logs = CapturingLoggerProvider.Diagnostic();
        await using var cluster = await StreamCluster.StartAsync(cs, silos: 2, persistentPubSub: true, logs);
        // The pulling agents retry a failed read on the provider's own schedule (Orleans' default waits 10–20 s).
        Assert.IsType<LogReadRetryBackoff>(
            ((InProcessSiloHandle)cluster.Silos[0]).ServiceProvider.GetKeyedService<IQueueReaderBackoffProvider>(LogStreams.ProviderName));

        var streams = Enumerable.Range(0, LogPartitioning.Count)
            .SelectMany(p => new[] { StreamCluster.NewStreamIdIn($"DF{p}A", p), StreamCluster.NewStreamIdIn($"DF{p}B", p) }).ToList();
        await using var writer = new Writer(store, streams);
        var phases = new List<string>();
        void Phase(string what) => phases.Add($"{DateTimeOffset.UtcNow:HH:mm:ss.fff} {what} (appends {writer.Appends}, failures {writer.Failures})");
        writer.Start();
        Phase("writer started");

        // Phase 1: delivery runs on two silos.
        await writer.WaitForAppendsAsync(2 * streams.Count);
        await WaitForDeliveryAsync(ds, streams, "before the faults", phases, logs, writerStopped: false);
        Phase("delivered before the faults");

        // Phase 2: a silo dies abruptly while the writer keeps appending; its queues move to the survivor.
        await cluster.KillSiloAsync(cluster.Silos[1], ct);
        Phase("silo 1 killed");
        await writer.WaitForAppendsAsync(writer.Appends + streams.Count);
        Phase("appended after the kill");

        // Phase 3: PostgreSQL goes away (appends fail, receivers' reads and LISTEN fail) and comes back.
        await server.StopAsync();
        Phase("PostgreSQL stopped");
        await writer.WaitForFailuresAsync(writer.Failures + 1);
        await server.RestartAsync();
        Phase("PostgreSQL restarted");
        await writer.WaitForAppendsAsync(writer.Appends + (2 * streams.Count));
        await writer.StopAsync();
        Phase("writer stopped");

        // Every committed event (what pf_events holds at the end) delivered, deduped by version, on every partition.
        await WaitForDeliveryAsync(ds, streams, "after a silo kill and a PostgreSQL restart", phases, logs, writerStopped: true);
        Phase("delivered after the faults");
        TestContext.Current.TestOutputHelper?.WriteLine(string.Join(Environment.NewLine, phases));
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

    // Every event committed when the wait starts, delivered (deduped by version, no version missing below it). While the
    // writer runs (before the faults) more is committed and delivered meanwhile: comparing with a count read at each poll
    // raced with delivery both ways (a delivery landing between the count and the look at the recorder made "delivered"
    // exceed "committed": a failure in a helper's run after the delivery path got faster). With the writer stopped the
    // log no longer moves, and what was delivered must then be exactly what was committed: nothing uncommitted delivered.
    private static async Task WaitForDeliveryAsync(
        NpgsqlDataSource ds, List<string> streams, string when, List<string> phases, CapturingLoggerProvider logs, bool writerStopped)
    {
        Dictionary<string, long> target = [];
        await Eventually.TrueAsync(async () => (target = await CommittedAsync(ds, streams)).Count > 0, TimeSpan.FromSeconds(60), "the committed versions read");
        static bool Covers(long[] delivered, long committed) =>
            delivered.Length >= committed && delivered.Take((int)committed).SequenceEqual(Enumerable.Range(1, (int)committed).Select(v => (long)v));
        try
        {
            await Eventually.TrueAsync(
                () => Task.FromResult(streams.All(s => Covers(Delivered(s), target.GetValueOrDefault(s)))),
                TimeSpan.FromSeconds(180), $"every committed event delivered {when}");
            if (writerStopped)
            {
                var final = await CommittedAsync(ds, streams);
                Assert.All(streams, s => Assert.Equal(Enumerable.Range(1, (int)final.GetValueOrDefault(s)).Select(v => (long)v), Delivered(s)));
            }
        }
        catch (TimeoutException e)
        {
            // Say which partitions stalled and what the silos logged, so a failure in CI explains itself.
            var committed = target;
            var behind = streams
                .Select(s => (Stream: s, Partition: LogPartitioning.PartitionOf(s), Committed: committed.GetValueOrDefault(s), Delivered: Delivered(s)))
                .Where(x => !Covers(x.Delivered, x.Committed))
                .Select(x => $"partition {x.Partition} stream {x.Stream}: committed {x.Committed}, delivered {x.Delivered.Length} distinct"
                    + $" (highest {(x.Delivered.Length == 0 ? 0 : x.Delivered[^1])})");
            throw new TimeoutException(
                $"{e.Message}{Environment.NewLine}Behind:{Environment.NewLine}  {string.Join(Environment.NewLine + "  ", behind)}"
                + $"{Environment.NewLine}Server:{Environment.NewLine}  {string.Join(Environment.NewLine + "  ", await ServerStateAsync(ds))}"
                + $"{Environment.NewLine}Phases:{Environment.NewLine}  {string.Join(Environment.NewLine + "  ", phases)}"
                + $"{Environment.NewLine}Silo warnings and errors (last 60 of {logs.Messages.Count}):{Environment.NewLine}  "
                + string.Join(Environment.NewLine + "  ", logs.Messages.TakeLast(60)), e);
        }
    }

    // The receivers' saved checkpoints against each partition's head, the read horizon, and every transaction that holds
    // it (a reader reads only below the oldest running transaction id).
    private static async Task<List<string>> ServerStateAsync(NpgsqlDataSource ds)
    {
        var lines = new List<string>();
        try
        {
            await using var cmd = ds.CreateCommand("""
                SELECT 'checkpoint ' || c.name || ' at (' || c.transaction_id || ', ' || c.global_position || '), partition head ('
                       || coalesce((SELECT e.transaction_id || ', ' || e.global_position FROM pf_events e
                                    WHERE e.log_partition = split_part(split_part(c.name, ':', 3), 'of', 1)::smallint
                                    ORDER BY e.transaction_id DESC, e.global_position DESC LIMIT 1), '-') || ')'
                FROM pf_checkpoints c WHERE c.name LIKE 'stream:%'
                UNION ALL SELECT 'horizon ' || pg_snapshot_xmin(pg_current_snapshot())
                UNION ALL
                SELECT 'backend ' || pid || ' ' || coalesce(state, '') || ' xid ' || coalesce(backend_xid::text, '-') || ' xmin '
                       || coalesce(backend_xmin::text, '-') || ' since ' || coalesce(xact_start::text, '-') || ': '
                       || left(regexp_replace(query, '\s+', ' ', 'g'), 160)
                FROM pg_stat_activity
                WHERE datname = current_database() AND pid <> pg_backend_pid() AND (state <> 'idle' OR backend_xid IS NOT NULL)
                """);
            await using var r = await cmd.ExecuteReaderAsync();
            while (await r.ReadAsync())
            {
                lines.Add(r.GetString(0));
            }
        }
        catch (NpgsqlException e)
        {
            lines.Add($"(not read: {e.Message})");
        }

        return lines;
    }

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
