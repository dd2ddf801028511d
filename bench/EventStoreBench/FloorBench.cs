using System.Diagnostics;
using System.Globalization;
using Npgsql;
using PumpFleet.Contracts.Events;
using PumpFleet.Contracts.Json;
using PumpFleet.EventStore;
using PumpFleet.EventStore.Benchmarks;
using PumpFleet.EventStore.Local;

namespace PumpFleet.Bench.EventStore;

/// <summary>
/// <c>--floor</c>: where the gap between a raw COPY and the durable append goes (issue 15, "saturation ≥ 60 % of raw COPY
/// of the same rows in the same run"). In one run on one durable server, the same shape of rows (streams of dose events
/// in batches, grouped into transactions as the group committer groups them) is written by steps that each add one part
/// of the store's append (<see cref="AppendFloor.Step"/>), then by the store's group committer itself, against the COPY
/// LoadBench compares the platform with (all rows in one COPY, one commit). The steps' order is reversed every other
/// round, so neither end always meets the warmer cache; each step writes fresh streams.
/// </summary>
internal static class FloorBench
{
    public static async Task RunAsync(Func<string, int, int> arg)
    {
        var streams = arg("--streams", 256);       // LoadBench's 64 hubs × 4 pumps
        var batchSize = arg("--batch-size", 10);   // events per message
        var batches = arg("--batches", 40);        // per stream per step
        var group = arg("--group", 16);            // streams per transaction
        var writers = arg("--writers", 4);         // transactions in flight (GroupCommit:Writers)
        var rounds = arg("--rounds", 3);
        // --committer-pair 1: only the store's committer with the previous hash from the stream's head (049, the default)
        // and read from the log as 043 did (the switch), alternating: PostgreSQL's CPU per row of the two (issue 15, h15y).
        var committerPair = arg("--committer-pair", 0) == 1;
        var rows = streams * batches * batchSize;
        var load = (await File.ReadAllTextAsync("/proc/loadavg")).Trim();
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"Append floor: {streams} streams x {batches} batches x {batchSize} events ({rows:N0} rows per step), {group} streams per transaction, {writers} writers, {rounds} rounds, durable PostgreSQL (fsync on), load average {load}"));
        await using var pg = await PrivatePostgres.StartAsync(durable: true, progress: Console.WriteLine);
        await using var ds = EventStoreDataSource.Build(pg.ConnectionString());
        await new SchemaMigrator(ds, [], Microsoft.Extensions.Logging.Abstractions.NullLogger<SchemaMigrator>.Instance).MigrateAsync();
        await AppendFloor.CreateTablesAsync(ds);
        await using var lookupDs = EventStoreDataSource.Build(pg.ConnectionString() + ";Options=-c pumpfleet.previous_hash=lookup");
        // --fill-months N: N months ahead, each holding 50,000 rows of other streams, so that every month partition's
        // (stream_id, version) index is a real tree as in a store that keeps months of history (a lookup by stream and
        // version without a month descends each of them; a fresh database's empty partitions cost it almost nothing).
        var fillMonths = arg("--fill-months", 0);
        if (fillMonths > 0)
        {
            await AppendFloor.FillMonthsAheadAsync(ds, fillMonths, 50_000);
        }

        var names = new List<string>
        {
            "COPY, all rows in one transaction (LoadBench's baseline)",
            "COPY, one transaction per group",
            "INSERT … unnest per group, same table",
            "the same into a table with the partition's 5 indexes",
            "the same into the event table (partitioned by month), statement triggers off, hash given",
            "+ the heads and uniqueness trigger (040/043)",
            "+ the NOTIFY trigger (007), inside the transaction",
            "pf_append_group (043): guards, previous hash, hash chain; NOTIFY inside",
            "the store's GroupCommitter, NOTIFY inside the transaction",
            "the store's GroupCommitter, NOTIFY after the commit (044)",
            "the store's GroupCommitter, NOTIFY inside, previous hash read from the log (049's switch: as 043)",
        };
        var rates = names.Select(_ => new List<double>()).ToArray();
        var cpu = names.Select(_ => new List<double>()).ToArray(); // PostgreSQL's CPU µs per row (all its processes)
        for (var round = 1; round <= rounds; round++)
        {
            var order = committerPair ? [8, 10] : Enumerable.Range(0, names.Count - 1).ToArray();
            if (round % 2 == 0)
            {
                Array.Reverse(order);
            }

            foreach (var s in order)
            {
                var data = MakeRows($"f{round}-{s}", streams, batches, batchSize);
                await AppendFloor.SetStatementTriggersAsync(ds, heads: s != 4, notify: s is not (4 or 5));
                var cpu0 = PostgresCpuSeconds(pg.DataDirectory);
                var sw = Stopwatch.StartNew();
                switch (s)
                {
                    case 0:
                        await RawCopyBaseline.CopyAsync(ds, data.SelectMany(st => st.SelectMany((b, i) => b.Events.Select((e, k) => new RawCopyRow(b.StreamId, (i * batchSize) + k + 1, e)))));
                        break;
                    case 1:
                        await GroupsAsync(ds, AppendFloor.Step.CopyPerGroup, data, group, writers);
                        break;
                    case 2:
                        await GroupsAsync(ds, AppendFloor.Step.InsertCopyTable, data, group, writers);
                        break;
                    case 3:
                        await GroupsAsync(ds, AppendFloor.Step.InsertIndexed, data, group, writers);
                        break;
                    case 4 or 5 or 6:
                        await GroupsAsync(ds, AppendFloor.Step.InsertEventTable, data, group, writers);
                        break;
                    case 7:
                        await GroupsAsync(ds, AppendFloor.Step.AppendGroup, data, group, writers);
                        break;
                    case 10:
                        await CommitterAsync(lookupDs, data, group, writers, notifyAfterCommit: false);
                        break;
                    default:
                        await CommitterAsync(ds, data, group, writers, notifyAfterCommit: s == 9);
                        break;
                }

                rates[s].Add(rows / sw.Elapsed.TotalSeconds);
                cpu[s].Add((PostgresCpuSeconds(pg.DataDirectory) - cpu0) * 1e6 / rows);
            }

            load = (await File.ReadAllTextAsync("/proc/loadavg")).Split(' ')[0];
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"round {round}: {string.Join(", ", rates.Where(r => r.Count > 0).Select(r => r[^1].ToString("N0", CultureInfo.InvariantCulture)))} rows/s; load average {load}"));
        }

        static double Median(IEnumerable<double> xs)
        {
            var a = xs.Order().ToArray();
            return a.Length % 2 == 1 ? a[a.Length / 2] : (a[(a.Length / 2) - 1] + a[a.Length / 2]) / 2;
        }

        Console.WriteLine();
        Console.WriteLine("| step | rows/s (median) | / COPY (median of rounds' ratios) | / previous step | µs per row (1 / rate) | PostgreSQL CPU µs per row (median) |");
        Console.WriteLine("|---|---:|---:|---:|---:|---:|");
        for (var s = 0; s < names.Count; s++)
        {
            if (rates[s].Count == 0)
            {
                continue;
            }

            var toCopy = rates[0].Count == 0 ? double.NaN : Median(rates[s].Select((r, i) => r / rates[0][i]));
            var toPrevious = s == 0 || rates[s - 1].Count == 0 ? 1 : Median(rates[s].Select((r, i) => r / rates[s - 1][i]));
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"| {names[s]} | {Median(rates[s]):N0} | {toCopy:P0} | {toPrevious:F2} | {1e6 / Median(rates[s]):F1} | {Median(cpu[s]):F1} |"));
        }

        if (committerPair)
        {
            Console.WriteLine();
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"PostgreSQL CPU µs per row per round, previous hash from the head (default) / from the log: {string.Join("; ", cpu[8].Zip(cpu[10]).Select(x => $"{x.First:F1} / {x.Second:F1}"))}; median of the rounds' ratios log / head {Median(cpu[10].Zip(cpu[8]).Select(x => x.First / x.Second)):F3}"));
        }
    }

    // Each writer owns the streams s ≡ w (mod writers) and writes their batches in order, a group of up to `group`
    // streams per transaction, so no two transactions touch one stream (the committer's groups never conflict either).
    private static Task GroupsAsync(NpgsqlDataSource ds, AppendFloor.Step step, List<StreamAppend>[] data, int group, int writers) =>
        Task.WhenAll(Enumerable.Range(0, writers).Select(w => Task.Run(async () =>
        {
            var mine = data.Where((_, s) => s % writers == w).ToArray();
            var batches = mine.Length == 0 ? 0 : mine[0].Count;
            for (var b = 0; b < batches; b++)
            {
                foreach (var chunk in mine.Select(st => st[b]).Chunk(group))
                {
                    await AppendFloor.WriteGroupAsync(ds, step, chunk);
                }
            }
        })));

    // The store's own path: every stream appends its batches one after the other, all streams at once, and the
    // committer groups whatever is queued (at most `group` streams, `writers` transactions in flight).
    private static async Task CommitterAsync(NpgsqlDataSource ds, List<StreamAppend>[] data, int group, int writers, bool notifyAfterCommit)
    {
        await using var committer = new GroupCommitter(ds, new GroupCommitOptions { MaxStreams = group, Writers = writers, NotifyAfterCommit = notifyAfterCommit });
        await Task.WhenAll(data.Select(st => Task.Run(async () =>
        {
            foreach (var a in st)
            {
                await committer.AppendAsync(a);
            }
        })));
    }

    // CPU seconds of the private server: its postmaster (found by the data directory on its command line; with its reaped
    // children's time, so a backend that exited between two readings still counts) and its live children. Other
    // PostgreSQL servers on the machine (other benchmarks' and tests') are not counted.
    private static double PostgresCpuSeconds(string dataDir)
    {
        var stats = new List<string[]>();
        var postmaster = -1;
        foreach (var dir in Directory.GetDirectories("/proc").Where(d => int.TryParse(Path.GetFileName(d), out _)))
        {
            try
            {
                // The command name may contain spaces: the fields after it follow the closing parenthesis.
                var stat = File.ReadAllText(Path.Combine(dir, "stat"));
                stats.Add([Path.GetFileName(dir), .. stat[(stat.LastIndexOf(')') + 2)..].Split(' ')]);
                if (postmaster < 0 && File.ReadAllText(Path.Combine(dir, "cmdline")).Contains(dataDir, StringComparison.Ordinal))
                {
                    postmaster = int.Parse(Path.GetFileName(dir), CultureInfo.InvariantCulture);
                }
            }
            catch (IOException)
            {
                // The process ended while we looked.
            }
        }

        // After the pid: [1] state, [2] ppid, … [12] utime, [13] stime, [14] cutime, [15] cstime.
        static double Seconds(string[] f, bool children) => (long.Parse(f[12], CultureInfo.InvariantCulture) + long.Parse(f[13], CultureInfo.InvariantCulture)
            + (children ? long.Parse(f[14], CultureInfo.InvariantCulture) + long.Parse(f[15], CultureInfo.InvariantCulture) : 0)) / 100.0;
        var pm = postmaster.ToString(CultureInfo.InvariantCulture);
        return stats.Where(f => f[0] == pm).Sum(f => Seconds(f, children: true)) + stats.Where(f => f[2] == pm).Sum(f => Seconds(f, children: false));
    }

    private static List<StreamAppend>[] MakeRows(string prefix, int streams, int batches, int batchSize)
    {
        var t0 = DateTimeOffset.UtcNow;
        var result = new List<StreamAppend>[streams];
        for (var s = 0; s < streams; s++)
        {
            var list = new List<StreamAppend>(batches);
            for (var b = 0; b < batches; b++)
            {
                var events = new EventToAppend[batchSize];
                for (var k = 0; k < batchSize; k++)
                {
                    var seq = (b * batchSize) + k + 1;
                    var e = new DoseDelivered { Seq = seq, At = t0.AddSeconds(seq), From = t0.AddSeconds(seq - 1), VolumeMl = 0.0208, Kind = "basal" };
                    events[k] = new EventToAppend(Guid.NewGuid(), "dose.delivered", EventJson.Serialize(e), e.Seq, e.At, t0.AddSeconds(seq), false, """{"hubId":"hub-0001"}""");
                }

                list.Add(new StreamAppend($"{prefix}-pump-{s:D4}", (long)b * batchSize, events));
            }

            result[s] = list;
        }

        return result;
    }
}
