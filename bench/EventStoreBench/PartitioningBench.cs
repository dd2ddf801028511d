using System.Diagnostics;
using Npgsql;
using PumpFleet.Contracts.Events;
using PumpFleet.Contracts.Json;
using PumpFleet.EventStore;
using PumpFleet.EventStore.Benchmarks;
using PumpFleet.EventStore.Local;
using PumpFleet.EventStore.Retention;

namespace PumpFleet.Bench.EventStore;

/// <summary>
/// <c>--partitioning</c>: the event table partitioned by month (migration 040) against the single table it replaced,
/// in one run on one durable server: the same appends into each (alternating which goes first), the raw COPY floor
/// into a copy of the single table, then the gap-safe global reader over everything each database holds. The rows'
/// receive times step an hour per event from the current month on, so a run spreads over several monthly partitions
/// (with --months-ahead of them attached, empty or not), as a year of a real log would. A third database, partitioned
/// like the second, is written and read through the platform's own data source (<see cref="EventStoreDataSource"/>:
/// statements prepared, <c>Max Auto Prepare</c>), so "prepared against before" is measured in the same run on the same
/// rows; the first two keep the connection string as given (--auto-prepare N, default 0: Npgsql's default, nothing
/// prepared).
/// </summary>
internal static class PartitioningBench
{
    public static async Task RunAsync(Func<string, int, int> arg)
    {
        var streams = arg("--streams", 16);
        var batches = arg("--batches", 60);
        var batchSize = arg("--batch-size", 100);
        var rounds = arg("--rounds", 3);
        var monthsAhead = arg("--months-ahead", 12);
        Console.WriteLine($"Partitioned vs single event table: {streams} streams x {batches} batches x {batchSize} events, {rounds} rounds, {monthsAhead} monthly partitions ahead, durable PostgreSQL (fsync on)");
        await using var pg = await PrivatePostgres.StartAsync(durable: true, progress: Console.WriteLine);
        await using (var admin = NpgsqlDataSource.Create(pg.ConnectionString()))
        {
            foreach (var db in new[] { "bench_single", "bench_partitioned", "bench_prepared" })
            {
                await using var cmd = admin.CreateCommand($"CREATE DATABASE {db}");
                await cmd.ExecuteNonQueryAsync();
            }
        }

        // --auto-prepare N: Npgsql's automatic preparation (Max Auto Prepare) for both, so a statement is planned once
        // per connection instead of per call; planning a query over many partitions is what partitioning costs a reader.
        var autoPrepare = arg("--auto-prepare", 0);
        string Cs(string db) => new NpgsqlConnectionStringBuilder(pg.ConnectionString(db)) { MaxAutoPrepare = autoPrepare }.ConnectionString;
        Console.WriteLine($"Max Auto Prepare = {autoPrepare}");
        await using var single = NpgsqlDataSource.Create(Cs("bench_single"));
        await using var partitioned = NpgsqlDataSource.Create(Cs("bench_partitioned"));
        await using var prepared = EventStoreDataSource.Build(pg.ConnectionString("bench_prepared"));
        await PartitioningBaseline.PrepareUnpartitionedAsync(single);
        await RawCopyBaseline.CreateTableAsync(single);
        foreach (var ds in new[] { partitioned, prepared })
        {
            await new SchemaMigrator(ds, [], Microsoft.Extensions.Logging.Abstractions.NullLogger<SchemaMigrator>.Instance).MigrateAsync();
            await new EventPartitions(ds).EnsureAsync(monthsAhead);
        }

        if (await PartitioningBaseline.IsPartitionedAsync(single) || !await PartitioningBaseline.IsPartitionedAsync(partitioned)
            || !await PartitioningBaseline.IsPartitionedAsync(prepared))
        {
            throw new InvalidOperationException("The databases do not have the layouts compared.");
        }

        var stores = (Single: new NpgsqlEventStore(single), Partitioned: new NpgsqlEventStore(partitioned), Prepared: new NpgsqlEventStore(prepared));
        var t0 = DateTimeOffset.UtcNow;
        List<double> singleRates = [], partRates = [], preparedRates = [], copyRates = [];
        for (var round = 1; round <= rounds; round++)
        {
            var rows = Enumerable.Range(0, streams).Select(_ => MakeRows(t0, batches * batchSize)).ToArray();
            async Task<double> AppendAllAsync(NpgsqlEventStore store)
            {
                var sw = Stopwatch.StartNew();
                await Task.WhenAll(rows.Select((r, s) => Task.Run(async () =>
                {
                    long version = 0;
                    for (var b = 0; b < batches; b++)
                    {
                        version = (await store.AppendAsync($"r{round}-s{s}", version, r.GetRange(b * batchSize, batchSize))).NextExpectedVersion;
                    }
                })));
                return streams * batches * batchSize / sw.Elapsed.TotalSeconds;
            }

            var copy = Stopwatch.StartNew();
            await Task.WhenAll(rows.Select((r, s) => Task.Run(() => RawCopyBaseline.CopyAsync(single, $"r{round}-s{s}", 0, r))));
            var copyRate = streams * batches * batchSize / copy.Elapsed.TotalSeconds;
            // Which store goes first rotates by round, so none always meets the warmest (or coldest) server.
            double singleRate = 0, partRate = 0, preparedRate = 0;
            foreach (var which in Enumerable.Range(0, 3).Select(i => (i + round) % 3))
            {
                switch (which)
                {
                    case 0: singleRate = await AppendAllAsync(stores.Single); break;
                    case 1: partRate = await AppendAllAsync(stores.Partitioned); break;
                    default: preparedRate = await AppendAllAsync(stores.Prepared); break;
                }
            }

            (singleRates, partRates, preparedRates, copyRates) = ([.. singleRates, singleRate], [.. partRates, partRate], [.. preparedRates, preparedRate], [.. copyRates, copyRate]);
            Console.WriteLine($"round {round}: COPY {copyRate:N0} events/s, append single table {singleRate:N0}, partitioned {partRate:N0}, partitioned prepared {preparedRate:N0} events/s (partitioned/single {partRate / singleRate:P0}, prepared/partitioned {preparedRate / partRate:P0}, partitioned/COPY {partRate / copyRate:P0})");
        }

        // The global reader over everything each database holds, pages of 1,000, three passes alternating.
        List<double> singleReads = [], partReads = [], preparedReads = [];
        long total = 0;
        (NpgsqlEventStore Store, List<double> Rates)[] readers = [(stores.Single, singleReads), (stores.Partitioned, partReads), (stores.Prepared, preparedReads)];
        for (var pass = 0; pass < 3; pass++)
        {
            foreach (var (store, list) in Enumerable.Range(0, 3).Select(i => readers[(i + pass) % 3]))
            {
                var sw = Stopwatch.StartNew();
                (total, var elapsed) = (await ReadEverythingAsync(store), sw.Elapsed);
                list.Add(total / elapsed.TotalSeconds);
            }
        }

        if (arg("--explain", 0) != 0)
        {
            Console.WriteLine("single table:\n" + await PartitioningBaseline.ExplainGlobalPageAsync(single, 1000));
            Console.WriteLine("partitioned:\n" + await PartitioningBaseline.ExplainGlobalPageAsync(partitioned, 1000));
        }

        var partitions = (await new EventPartitions(partitioned).ListAsync()).Count(p => p.ArchivedAt is null) + 1; // + the default
        double Median(List<double> xs) => xs.Order().ElementAt(xs.Count / 2);
        Console.WriteLine();
        Console.WriteLine($"| measure ({streams} concurrent streams, batches of {batchSize}; median of {rounds} rounds) | single table | partitioned ({partitions} partitions attached) | partitioned, prepared (Max Auto Prepare {EventStoreDataSource.DefaultMaxAutoPrepare}) | partitioned / single | prepared / partitioned |");
        Console.WriteLine("|---|---|---|---|---|---|");
        Console.WriteLine($"| store append | {Median(singleRates):N0} events/s | {Median(partRates):N0} events/s | {Median(preparedRates):N0} events/s | {Median([.. partRates.Zip(singleRates, (p, s) => p / s)]):P0} | {Median([.. preparedRates.Zip(partRates, (p, s) => p / s)]):P0} |");
        Console.WriteLine($"| append / raw COPY ({Median(copyRates):N0} events/s, single table) | {Median(singleRates) / Median(copyRates):P0} | {Median(partRates) / Median(copyRates):P0} | {Median(preparedRates) / Median(copyRates):P0} | | |");
        Console.WriteLine($"| global read, pages of 1,000 ({total:N0} events, median of 3 passes) | {Median(singleReads):N0} events/s | {Median(partReads):N0} events/s | {Median(preparedReads):N0} events/s | {Median(partReads) / Median(singleReads):P0} | {Median([.. preparedReads.Zip(partReads, (p, s) => p / s)]):P0} |");
        Console.WriteLine($"| event table + indexes | {await PartitioningBaseline.EventTableBytesAsync(single) / 1048576.0:N0} MiB | {await PartitioningBaseline.EventTableBytesAsync(partitioned) / 1048576.0:N0} MiB | {await PartitioningBaseline.EventTableBytesAsync(prepared) / 1048576.0:N0} MiB | | |");
    }

    private static async Task<long> ReadEverythingAsync(NpgsqlEventStore store)
    {
        long n = 0;
        var at = GlobalCheckpoint.Start;
        while (true)
        {
            var page = await store.ReadAllAsync(at, 1000);
            if (page.Events.Count == 0)
            {
                return n;
            }

            n += page.Events.Count;
            at = page.Next;
        }
    }

    // A pump's hourly reports: received an hour apart from t0 on, so the rows of one round cross month boundaries.
    private static List<EventToAppend> MakeRows(DateTimeOffset t0, int n)
    {
        var list = new List<EventToAppend>(n);
        for (var i = 0; i < n; i++)
        {
            var e = new DoseDelivered { Seq = i + 1, At = t0.AddHours(i + 1), From = t0.AddHours(i), VolumeMl = 0.0208, Kind = "basal" };
            list.Add(new EventToAppend(Guid.NewGuid(), "dose.delivered", EventJson.Serialize(e), e.Seq, e.At, t0.AddHours(i + 1).AddSeconds(3),
                false, """{"hubId":"hub-0001"}"""));
        }

        return list;
    }
}
