using Microsoft.Extensions.DependencyInjection;
using PumpFleet.EventStore;
using PumpFleet.EventStore.Log;
using PumpFleet.TestSupport;

namespace PumpFleet.Projections.Tests;

/// <summary>
/// How many log reads a poll costs (docs/benchmarks.md "Fewer, larger log reads"): with new events in every log
/// partition, one read per partition, no read-ahead that is then thrown away; with nothing new, one read per partition
/// and a checkpoint lookup, not a second read of the log.
/// </summary>
public sealed class ProjectionReadCountTests(PostgresFixture pg) : ProjectionTestBase(pg)
{
    private const string Projection = "anomalies";

    [Fact]
    public async Task ALivePoll_ReadsEachPartitionOnce_AndAnIdlePollToo()
    {
        var reads = new CountingReader();
        var runner = Build(ConnectionString, configure: s => s.AddSingleton<ILogPartitionReader>(sp =>
        {
            reads.Inner = (ILogPartitionReader)sp.GetRequiredService<IEventStore>();
            return reads;
        })).GetRequiredService<ProjectionRunner>();
        var streams = StreamsInEveryPartition();

        // A first round of events gives the runner its hints (where it committed in each partition).
        await AppendOneToEachAsync(streams, 0);
        await CatchUpAsync(runner);

        // Live: one short page per partition.
        await AppendOneToEachAsync(streams, 1);
        reads.Count = 0;
        await runner.CatchUpAsync(Projection, 0, 1, TimeSpan.FromMinutes(1), Ct);
        Assert.Equal(LogPartitioning.Count, reads.Count);

        // Idle: nothing new anywhere.
        await CatchUpAsync(runner);
        reads.Count = 0;
        await runner.CatchUpAsync(Projection, 0, 1, TimeSpan.FromMinutes(1), Ct);
        Assert.Equal(LogPartitioning.Count, reads.Count);
        Assert.Equal(2L * LogPartitioning.Count, await ScalarAsync<long>(ConnectionString, "SELECT count(*) FROM pf_anomalies"));
    }

    // Other tests' transactions on the same server can hold the horizon back: poll until every partition is done.
    private static Task CatchUpAsync(ProjectionRunner runner) => Eventually.TrueAsync(async () =>
    {
        await runner.CatchUpAsync(Projection, 0, 1, TimeSpan.FromMinutes(1), Ct);
        return await runner.IsCaughtUpAsync(Projection, 0, 1, Ct);
    }, TimeSpan.FromSeconds(60), "the projection at the end of the log", TimeSpan.FromMilliseconds(20));

    private static string[] StreamsInEveryPartition()
    {
        var streams = new string[LogPartitioning.Count];
        var prefix = $"cohort:RC{Guid.NewGuid():N}"[..20];
        for (var i = 0; streams.Any(s => s is null); i++)
        {
            var id = $"{prefix}:{i}";
            streams[LogPartitioning.PartitionOf(id)] ??= id;
        }

        return streams;
    }

    private async Task AppendOneToEachAsync(string[] streams, long expected)
    {
        foreach (var id in streams)
        {
            var signal = new Contracts.Events.AnomalyDetected
            {
                At = new DateTimeOffset(2026, 11, 2, 0, 0, 0, TimeSpan.Zero), AnomalyId = $"{id}:cohort-signal:{expected + 1}", Kind = "cohort-signal",
                Severity = "warning", Summary = "read count", Evidence = new Dictionary<string, double> { ["rate"] = 3.2 },
            };
            await Store.AppendAsync(id, expected,
                [new EventToAppend(Guid.NewGuid(), "anomaly.detected", Contracts.Json.EventJson.Serialize(signal), null, null, signal.At)], Ct);
        }
    }

    private sealed class CountingReader : ILogPartitionReader
    {
        private int _count;

        public ILogPartitionReader Inner { get; set; } = null!;

        public int Count
        {
            get => Volatile.Read(ref _count);
            set => Volatile.Write(ref _count, value);
        }

        public Task<GlobalPage> ReadPartitionAsync(int partition, GlobalCheckpoint after, int limit, CancellationToken ct = default)
        {
            Interlocked.Increment(ref _count);
            return Inner.ReadPartitionAsync(partition, after, limit, ct);
        }

        public Task<GlobalCheckpoint?> ReadPartitionHeadAsync(int partition, CancellationToken ct = default) => Inner.ReadPartitionHeadAsync(partition, ct);

        public Task<long> CountPartitionAfterAsync(int partition, GlobalCheckpoint after, long cap, CancellationToken ct = default) =>
            Inner.CountPartitionAfterAsync(partition, after, cap, ct);

        public Task<GlobalCheckpoint> AdvanceCheckpointAsync(string name, GlobalCheckpoint checkpoint, CancellationToken ct = default) =>
            Inner.AdvanceCheckpointAsync(name, checkpoint, ct);
    }
}
