using Microsoft.Extensions.DependencyInjection;
using Npgsql;
using PumpFleet.EventStore;
using PumpFleet.EventStore.Log;
using PumpFleet.TestSupport;

namespace PumpFleet.Projections.Tests;

/// <summary>
/// The live partitions' short pages applied together in one transaction per poll (<c>Projections:CombineLivePartitions</c>,
/// issue 15, h15w): every event is applied exactly once and in its stream's order, each partition's checkpoint
/// reaches the partition's end, a poll that finds nothing (or only what a late commit holds back) never skips an
/// event, a projection fault in a combined page leaves only the failing event to be parked, and a rebuild of idle
/// partitions is noticed at the next poll.
/// </summary>
public sealed class CombinedLivePagesTests(PostgresFixture pg) : ProjectionTestBase(pg)
{
    private const string Name = "combined";

    private ServiceProvider _services = null!;

    [Fact]
    public async Task LivePolls_ApplyEveryEventOnce_InCombinedPages_AndReachEachPartitionsEnd()
    {
        var (runner, _) = await StartAsync();
        var streams = StreamsInEveryPartition();
        var versions = new long[streams.Length];
        await AppendRoundAsync(streams, versions, _ => 1);
        await CatchUpAsync(runner); // the first pages go the one-partition way and give the runner its hints
        var combinedBefore = runner.CombinedPagesCommitted;

        for (var round = 0; round < 6; round++)
        {
            // 1 to 3 events per partition and round; each poll (as the grain's timer makes) until the round is applied.
            var r = round;
            await AppendRoundAsync(streams, versions, i => 1 + ((i + r) % 3));
            var expected = versions.Sum();
            await Eventually.TrueAsync(async () =>
            {
                await runner.CatchUpAsync(Name, 0, 1, TimeSpan.FromMinutes(1), Ct);
                return await AppliedAsync() == expected;
            }, TimeSpan.FromSeconds(60), $"round {round} to be applied", TimeSpan.FromMilliseconds(20));
        }

        await CatchUpAsync(runner);
        var total = versions.Sum();
        Assert.True(runner.CombinedPagesCommitted > combinedBefore, "no live poll took the combined way");
        Assert.Equal(total, await AppliedAsync());
        Assert.Equal(0L, await ScalarAsync<long>(ConnectionString, "SELECT count(*) FROM test_combined WHERE times <> 1"));
        Assert.Equal(0L, await OutOfOrderAsync());
        // The progress rows count each event once (they are written with the checkpoints, per partition).
        Assert.Equal(total, await ScalarAsync<long>(ConnectionString, $"SELECT sum(events_processed)::bigint FROM pf_projection_progress WHERE projection = '{Name}'"));
        Assert.Equal((long)LogPartitioning.Count, await ScalarAsync<long>(ConnectionString, $"SELECT count(*) FROM pf_projection_progress WHERE projection = '{Name}'"));
        Assert.True(await runner.IsCaughtUpAsync(Name, 0, 1, Ct));
    }

    [Fact]
    public async Task PollsWhileALateCommitHoldsTheHorizon_SkipNothing()
    {
        var (runner, _) = await StartAsync();
        var streams = StreamsInEveryPartition();
        var versions = new long[streams.Length];
        await AppendRoundAsync(streams, versions, _ => 1);
        await CatchUpAsync(runner);
        var before = await AppliedAsync();

        // T1 takes a lower position in partition 0 and commits after a round of events in every partition.
        var slow = StreamIn(LogPartitioning.PartitionOf(streams[0]));
        await using var dataSource = NpgsqlDataSource.Create(ConnectionString);
        await using var t1 = await LateCommit.BeginAsync(dataSource, slow, Ct);

        await AppendRoundAsync(streams, versions, _ => 2);

        // Every poll while T1 is open stops below it: nothing is applied, and no checkpoint passes T1's position.
        for (var i = 0; i < 3; i++)
        {
            await runner.CatchUpAsync(Name, 0, 1, TimeSpan.FromMinutes(1), Ct);
        }

        Assert.Equal(before, await AppliedAsync());
        await t1.CommitAsync(Ct);

        await CatchUpAsync(runner);
        Assert.Equal(versions.Sum() + 1, await AppliedAsync());
        Assert.Equal(1L, await ScalarAsync<long>(ConnectionString, $"SELECT count(*) FROM test_combined WHERE stream_id = '{slow}'"));
        Assert.Equal(0L, await ScalarAsync<long>(ConnectionString, "SELECT count(*) FROM test_combined WHERE times <> 1"));
        Assert.Equal(0L, await OutOfOrderAsync());
    }

    [Fact]
    public async Task AFaultInACombinedPage_AppliesTheOtherPartitions_AndParksOnlyTheFailingEvent()
    {
        var (runner, projection) = await StartAsync(o =>
        {
            o.MaxAttempts = 2;
            o.RetryBackoff = TimeSpan.Zero;
        });
        var streams = StreamsInEveryPartition();
        var versions = new long[streams.Length];
        await AppendRoundAsync(streams, versions, _ => 1);
        await CatchUpAsync(runner);

        var round = await AppendRoundAsync(streams, versions, _ => 3);
        var poison = round[5][1]; // the second of three events of one partition's stream
        projection.Poisoned.Add(poison);
        await CatchUpAsync(runner);

        var parked = Assert.Single(await _services.GetRequiredService<ParkedEventStore>().ListAsync(all: false, Ct));
        Assert.Equal((Name, streams[5], 3L), (parked.Projection, parked.StreamId, parked.Version));
        Assert.Equal(versions.Sum() - 1, await AppliedAsync());
        Assert.Equal(0L, await ScalarAsync<long>(ConnectionString, "SELECT count(*) FROM test_combined WHERE times <> 1"));
        Assert.True(projection.Failures >= 2, $"the poison failed {projection.Failures} times");

        // The partitions go on live, combined again.
        var combined = runner.CombinedPagesCommitted;
        await AppendRoundAsync(streams, versions, _ => 1);
        await CatchUpAsync(runner);
        Assert.Equal(versions.Sum() - 1, await AppliedAsync());
        Assert.True(runner.CombinedPagesCommitted > combined, "the live partitions did not combine again after the fault");
    }

    [Fact]
    public async Task ARebuildOfIdlePartitions_IsNoticedAtTheNextPoll()
    {
        var (runner, _) = await StartAsync();
        var streams = StreamsInEveryPartition();
        var versions = new long[streams.Length];
        await AppendRoundAsync(streams, versions, _ => 2);
        await CatchUpAsync(runner);
        Assert.Equal(versions.Sum(), await AppliedAsync());

        // Nothing new anywhere: the rebuild empties the table and puts every checkpoint back; the idle partitions'
        // stored checkpoints, checked in one query, are no longer the runner's hints, so it reads them again.
        await _services.GetRequiredService<ProjectionRebuilder>().RebuildAsync(Name, Ct);
        Assert.Equal(0L, await AppliedAsync());
        await CatchUpAsync(runner);
        Assert.Equal(versions.Sum(), await AppliedAsync());
        Assert.Equal(0L, await ScalarAsync<long>(ConnectionString, "SELECT count(*) FROM test_combined WHERE times <> 1"));
    }

    [Fact]
    public async Task Off_EveryPartitionGetsItsOwnPage_AsBefore()
    {
        var (runner, _) = await StartAsync(o => o.CombineLivePartitions = false);
        var streams = StreamsInEveryPartition();
        var versions = new long[streams.Length];
        await AppendRoundAsync(streams, versions, _ => 1);
        await CatchUpAsync(runner);
        await AppendRoundAsync(streams, versions, _ => 2);
        await CatchUpAsync(runner);

        Assert.Equal(0L, runner.CombinedPagesCommitted);
        Assert.Equal(versions.Sum(), await AppliedAsync());
        Assert.Equal(0L, await ScalarAsync<long>(ConnectionString, "SELECT count(*) FROM test_combined WHERE times <> 1"));
    }

    [Fact]
    public void Options_AreValidated()
    {
        var projections = new ProjectionOptionsValidator();
        Assert.True(projections.Validate(null, new ProjectionOptions()).Succeeded);
        Assert.True(projections.Validate(null, new ProjectionOptions { CombinedPageMaxEvents = 0 }).Failed);
        Assert.True(projections.Validate(null, new ProjectionOptions { CombinedPageMaxEvents = 100_001 }).Failed);
        var tallies = new ReadModels.PartitionTallyOptionsValidator();
        Assert.True(tallies.Validate(null, new ReadModels.PartitionTallyOptions()).Succeeded);
        Assert.True(tallies.Validate(null, new ReadModels.PartitionTallyOptions { FlushInterval = TimeSpan.FromMilliseconds(99) }).Failed);
        Assert.True(tallies.Validate(null, new ReadModels.PartitionTallyOptions { FlushInterval = TimeSpan.FromMinutes(11) }).Failed);
    }

    private async Task<(ProjectionRunner Runner, CountingProjection Projection)> StartAsync(Action<ProjectionOptions>? configure = null)
    {
        await ExecAsync(ConnectionString, """
            CREATE TABLE test_combined (event_id uuid PRIMARY KEY, stream_id text NOT NULL, version bigint NOT NULL, times int NOT NULL,
                                        applied bigserial NOT NULL)
            """);
        var projection = new CountingProjection(Name, "test_combined");
        _services = Build(ConnectionString, configure: s =>
        {
            s.AddSingleton<IProjection>(projection);
            if (configure is not null)
            {
                s.Configure(configure);
            }
        });
        return (_services.GetRequiredService<ProjectionRunner>(), projection);
    }

    private Task<long> AppliedAsync() => ScalarAsync<long>(ConnectionString, "SELECT count(*) FROM test_combined");

    // Events of one stream applied out of version order (the apply order is the bigserial).
    private Task<long> OutOfOrderAsync() => ScalarAsync<long>(ConnectionString, """
        SELECT count(*) FROM (SELECT version, lag(version) OVER (PARTITION BY stream_id ORDER BY applied) AS prev FROM test_combined) x
        WHERE prev IS NOT NULL AND version <> prev + 1
        """);

    // Other tests' transactions on the same server can hold the horizon back: poll until every partition is done.
    private static Task CatchUpAsync(ProjectionRunner runner) => Eventually.TrueAsync(async () =>
    {
        await runner.CatchUpAsync(Name, 0, 1, TimeSpan.FromMinutes(1), Ct);
        return await runner.IsCaughtUpAsync(Name, 0, 1, Ct);
    }, TimeSpan.FromSeconds(60), "the projection at the end of the log", TimeSpan.FromMilliseconds(20));

    // One new stream in each log partition.
    private static string[] StreamsInEveryPartition() => [.. Enumerable.Range(0, LogPartitioning.Count).Select(StreamIn)];

    private static string StreamIn(int partition)
    {
        var prefix = $"CB{Guid.NewGuid():N}"[..14];
        for (var i = 0; ; i++)
        {
            var id = $"{prefix}{i}";
            if (LogPartitioning.PartitionOf(id) == partition)
            {
                return id;
            }
        }
    }

    // Appends count(i) events to stream i; returns each stream's new event ids.
    private async Task<Guid[][]> AppendRoundAsync(string[] streams, long[] versions, Func<int, int> count)
    {
        var store = _services.GetRequiredService<IEventStore>();
        var ids = new Guid[streams.Length][];
        for (var i = 0; i < streams.Length; i++)
        {
            var rows = Enumerable.Range(0, count(i)).Select(_ => new EventToAppend(Guid.NewGuid(), "status", "{}", null, null, new DateTimeOffset(2026, 11, 2, 0, 0, 0, TimeSpan.Zero))).ToList();
            await store.AppendAsync(streams[i], versions[i], rows, Ct);
            versions[i] += rows.Count;
            ids[i] = [.. rows.Select(r => r.EventId)];
        }

        return ids;
    }
}
