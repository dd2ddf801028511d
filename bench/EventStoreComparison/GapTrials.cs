using System.Collections.Concurrent;
using System.Diagnostics;
using JasperFx.Events;
using Marten;
using Microsoft.Extensions.Logging.Abstractions;
using Npgsql;
using PumpFleet.EventStore;
using PumpFleet.EventStore.Benchmarks;

namespace PumpFleet.EventStoreComparison;

/// <summary>The outcome of every trial of one reader.</summary>
public sealed record GapResult(string Reader, long Committed, long Delivered, long Skipped, long Duplicates, int TrialsWithSkip, int Trials, CatchUp WithRollback, CatchUp WithoutRollback);

/// <summary>Catch-up times (seconds) of the trials that delivered everything; NaN when none did.</summary>
public sealed record CatchUp(double Median, double Max, int Trials);

/// <summary>
/// Writers whose transactions commit out of order, some held open for seconds and one rolled back, while a reader
/// follows the global log. Ground truth is what is in the table once every writer has finished.
/// </summary>
public static class GapTrials
{
    private const int HeldBatch = 50;
    private static readonly TimeSpan ReaderPoll = TimeSpan.FromMilliseconds(250);
    private static readonly TimeSpan Grace = TimeSpan.FromSeconds(20);

    // Writer i opens its transaction and inserts at 150 ms × i, then holds it open this long before committing
    // (negative: rolls back in even trials, commits in odd ones). Positions are therefore allocated in writer order
    // and committed in a different one; two writers stay open longer than Marten's 3 s stale-sequence threshold.
    private static readonly double[] HoldSeconds = [5.0, 1.5, 0.2, 4.0, -1.0, 0.6, 2.5, 0.05];

    /// <summary>A sentence for the report.</summary>
    public static string Describe =>
        $"Each trial: {HoldSeconds.Length} writers open a transaction 150 ms apart and insert {HeldBatch} events each, then hold it open for " +
        $"{string.Join(", ", HoldSeconds.Where(h => h >= 0).Select(h => $"{h:0.##}"))} s before committing; one more writer rolls back after 1 s in even trials and commits after 1 s in odd ones, " +
        "while a background writer appends a batch of 10 every 100 ms through the store's normal append. A trial ends when the reader " +
        $"has delivered every committed event or {Grace.TotalSeconds:0} s after the last commit. Catch-up = last committed event delivered − last commit, shown separately for trials with and without the rolled-back writer. " +
        $"Our reader polls every {ReaderPoll.TotalMilliseconds:0} ms (Marten's fast polling interval) in pages of 1,000.";

    /// <summary>Runs the trials for our reader and for Marten's daemon under each gap policy, in a fresh database.</summary>
    public static async Task<IReadOnlyList<GapResult>> RunAllAsync(NpgsqlDataSource admin, string mainCs, int trials, Action<string> log)
    {
        await using (var cmd = admin.CreateCommand("CREATE DATABASE gap_trials"))
        {
            await cmd.ExecuteNonQueryAsync();
        }

        var cs = new NpgsqlConnectionStringBuilder(mainCs) { Database = "gap_trials" }.ConnectionString;
        await using var ds = NpgsqlDataSource.Create(cs);
        await new SchemaMigrator(ds, [], NullLogger<SchemaMigrator>.Instance).MigrateAsync();
        var results = new List<GapResult>
        {
            await RunOursAsync(ds, trials, log),
        };
        foreach (var policy in new[] { GapPolicy.Default, GapPolicy.WallClockOnly })
        {
            results.Add(await RunMartenAsync(ds, cs, policy, trials, log));
        }

        return results;
    }

    private static async Task<GapResult> RunOursAsync(NpgsqlDataSource ds, int trials, Action<string> log)
    {
        var store = new NpgsqlEventStore(ds);
        var seen = new ConcurrentDictionary<Guid, (int Count, long FirstSeen)>();
        using var stop = new CancellationTokenSource();
        var reader = Task.Run(async () =>
        {
            var cp = GlobalCheckpoint.Start;
            while (!stop.IsCancellationRequested)
            {
                var page = await store.ReadAllAsync(cp, 1000, CancellationToken.None);
                var now = Stopwatch.GetTimestamp();
                foreach (var e in page.Events)
                {
                    seen.AddOrUpdate(e.EventId, (1, now), (_, x) => (x.Count + 1, x.FirstSeen));
                }

                cp = page.Next;
                if (page.Events.Count < 1000)
                {
                    await Task.Delay(ReaderPoll, CancellationToken.None);
                }
            }
        });

        var outcomes = new List<Trial>();
        for (var t = 0; t < trials; t++)
        {
            var prefix = $"ours-{t}";
            outcomes.Add(await RunTrialAsync(
                prefix,
                rollback: t % 2 == 0,
                (stream, version, batch) => store.AppendAsync(stream, version, batch.Select(e => e.Ours).ToList()),
                HeldInsertOursAsync(ds),
                ids => EventTableProbes.CommittedEventIdsAsync(ds, ids),
                seen));
            log($"gap trial {t + 1}/{trials}, our reader: {outcomes[^1]}");
        }

        await stop.CancelAsync();
        await reader;
        return Summarise("our gap-safe reader (ReadAllAsync below the xmin horizon)", outcomes);
    }

    private static async Task<GapResult> RunMartenAsync(NpgsqlDataSource ds, string cs, GapPolicy policy, int trials, Action<string> log)
    {
        var subscription = new CollectingSubscription();
        var schema = $"mt_gap_{policy.ToString().ToLowerInvariant()}";
        await using var store = MartenStores.Create(cs, schema, EventAppendMode.Quick, daemon: policy, subscription: subscription);
        await store.Storage.ApplyAllConfiguredChangesToDatabaseAsync();
        using var daemon = await store.BuildProjectionDaemonAsync();
        await daemon.StartAllAsync();

        var outcomes = new List<Trial>();
        for (var t = 0; t < trials; t++)
        {
            var prefix = $"{schema}-{t}";
            outcomes.Add(await RunTrialAsync(
                prefix,
                rollback: t % 2 == 0,
                (stream, version, batch) => MartenStores.AppendAsync(store, stream, version, batch),
                async (stream, batch, hold) =>
                {
                    await using var conn = await ds.OpenConnectionAsync();
                    await using var tx = await conn.BeginTransactionAsync();
                    await MartenStores.AppendAsync(store, stream, 0, batch, tx);
                    await FinishAsync(tx, hold);
                },
                ids => CountCommittedAsync(ds, $"{schema}.mt_events", "id", ids),
                subscription.Seen));
            log($"gap trial {t + 1}/{trials}, Marten daemon ({policy}): {outcomes[^1]}");
        }

        await daemon.StopAllAsync();
        var name = policy switch
        {
            GapPolicy.Default => "Marten 9.58 async daemon, defaults (transaction evidence on, stale threshold 3 s)",
            _ => "Marten 9.58 async daemon, UseTransactionEvidenceForGapSkipping = false (pre-#4953 behaviour)",
        };
        return Summarise(name, outcomes);
    }

    private sealed record Trial(bool Rollback, long Committed, long Delivered, long Duplicates, double? CatchUpSeconds)
    {
        public override string ToString() =>
            $"{(Rollback ? "with" : "without")} a rolled-back writer: committed {Committed}, delivered {Delivered}, skipped {Committed - Delivered}, twice {Duplicates}, catch-up {(CatchUpSeconds is { } c ? $"{c:F2} s" : "never")}";
    }

    private delegate Task AppendBatch(string stream, long expectedVersion, IReadOnlyList<BenchEvent> batch);

    private delegate Task HeldAppend(string stream, IReadOnlyList<BenchEvent> batch, double holdSeconds);

    private static async Task<Trial> RunTrialAsync(
        string prefix, bool rollback, AppendBatch append, HeldAppend held, Func<Guid[], Task<Guid[]>> committedOf,
        ConcurrentDictionary<Guid, (int Count, long FirstSeen)> seen)
    {
        var allIds = new ConcurrentBag<Guid>();
        var lastCommit = 0L;
        using var stopBackground = new CancellationTokenSource();
        var background = Task.Run(async () =>
        {
            long version = 0;
            var stream = $"{prefix}-bg";
            while (!stopBackground.IsCancellationRequested)
            {
                var batch = Rows.Make(10, version + 1);
                foreach (var e in batch)
                {
                    allIds.Add(e.Id);
                }

                await append(stream, version, batch);
                InterlockedMax(ref lastCommit, Stopwatch.GetTimestamp());
                version += batch.Length;
                await Task.Delay(100, CancellationToken.None);
            }
        });

        var writers = HoldSeconds.Select((hold, i) => Task.Run(async () =>
        {
            await Task.Delay(150 * i);
            var batch = Rows.Make(HeldBatch);
            foreach (var e in batch)
            {
                allIds.Add(e.Id);
            }

            var effective = hold < 0 && !rollback ? -hold : hold;
            await held($"{prefix}-w{i}", batch, effective);
            var now = Stopwatch.GetTimestamp();
            if (effective >= 0)
            {
                InterlockedMax(ref lastCommit, now);
            }
        })).ToArray();
        await Task.WhenAll(writers);
        await Task.Delay(500);
        await stopBackground.CancelAsync();
        await background;

        var committed = await committedOf(allIds.ToArray());
        var deadline = Stopwatch.GetTimestamp() + (long)(Grace.TotalSeconds * Stopwatch.Frequency);
        while (Stopwatch.GetTimestamp() < deadline && committed.Any(id => !seen.ContainsKey(id)))
        {
            await Task.Delay(50);
        }

        var delivered = committed.Where(seen.ContainsKey).ToList();
        var duplicates = delivered.Count(id => seen[id].Count > 1);
        double? catchUp = delivered.Count == committed.Length && committed.Length > 0
            ? Math.Max(0, (committed.Max(id => seen[id].FirstSeen) - lastCommit) / (double)Stopwatch.Frequency)
            : null;
        return new Trial(rollback, committed.Length, delivered.Count, duplicates, catchUp);
    }

    private static async Task FinishAsync(NpgsqlTransaction tx, double hold)
    {
        await Task.Delay(TimeSpan.FromSeconds(Math.Abs(hold)));
        if (hold >= 0)
        {
            await tx.CommitAsync();
        }
        else
        {
            await tx.RollbackAsync();
        }
    }

    // A transaction that stays open after its INSERT: the store's own append commits at once, so the benchmark writes
    // the same row shape into the same table inside an explicit transaction instead (the event store's helper).
    private static HeldAppend HeldInsertOursAsync(NpgsqlDataSource ds) => async (stream, batch, hold) =>
    {
        await using var conn = await ds.OpenConnectionAsync();
        await using var tx = await conn.BeginTransactionAsync();
        await InTransactionInsert.InsertDosesAsync(conn, tx, stream, [.. batch.Select(e => e.Ours)]);
        await FinishAsync(tx, hold);
    };

    private static async Task<Guid[]> CountCommittedAsync(NpgsqlDataSource ds, string table, string idColumn, Guid[] ids)
    {
        await using var cmd = ds.CreateCommand($"SELECT {idColumn} FROM {table} WHERE {idColumn} = ANY($1)");
        cmd.Parameters.Add(new() { Value = ids });
        var list = new List<Guid>();
        await using var r = await cmd.ExecuteReaderAsync();
        while (await r.ReadAsync())
        {
            list.Add(r.GetGuid(0));
        }

        return [.. list];
    }

    private static void InterlockedMax(ref long target, long value)
    {
        long current;
        while ((current = Interlocked.Read(ref target)) < value && Interlocked.CompareExchange(ref target, value, current) != current)
        {
        }
    }

    private static GapResult Summarise(string reader, List<Trial> trials)
    {
        static CatchUp Of(IEnumerable<Trial> ts)
        {
            var xs = ts.Where(t => t.CatchUpSeconds is not null).Select(t => t.CatchUpSeconds!.Value).ToList();
            return new CatchUp(xs.Count > 0 ? Stats.Median(xs) : double.NaN, xs.Count > 0 ? xs.Max() : double.NaN, xs.Count);
        }

        return new GapResult(
            reader,
            trials.Sum(t => t.Committed),
            trials.Sum(t => t.Delivered),
            trials.Sum(t => t.Committed - t.Delivered),
            trials.Sum(t => t.Duplicates),
            trials.Count(t => t.Delivered < t.Committed),
            trials.Count,
            Of(trials.Where(t => t.Rollback)),
            Of(trials.Where(t => !t.Rollback)));
    }
}
