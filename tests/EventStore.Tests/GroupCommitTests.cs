using PumpFleet.EventStore.Integrity;
using PumpFleet.TestSupport;

namespace PumpFleet.EventStore.Tests;

/// <summary>
/// Group commit (migration 042, <see cref="GroupCommitter"/>) against real PostgreSQL: several streams' appends in one
/// transaction, each stream's concurrency and idempotency its own.
/// </summary>
public sealed class GroupCommitTests(PostgresFixture pg) : EventStoreTestBase(pg)
{
    // Fixed in CI; PUMPFLEET_PROPERTY_SEED tries others. Every failure found is kept below as a named case.
    private static readonly int Seed = int.TryParse(Environment.GetEnvironmentVariable("PUMPFLEET_PROPERTY_SEED"), out var s) ? s : 20261130;

    [Fact]
    public async Task OneGroup_ConflictInOneStream_FailsOnlyThatStream()
    {
        var ct = TestContext.Current.CancellationToken;
        var (a, b, c) = (NewStream(), NewStream(), NewStream());
        await Store.AppendAsync(b, 0, [Evt(1)], ct);
        await using var committer = Grouping();

        var ok = committer.AppendAsync(new StreamAppend(a, 0, [Evt(1), Evt(2)]), ct);
        var stale = committer.AppendAsync(new StreamAppend(b, 0, [Evt(2)]), ct);     // b is at 1
        var ahead = committer.AppendAsync(new StreamAppend(c, 5, [Evt(1)]), ct);     // c is empty

        Assert.Equal(2, (await ok).NextExpectedVersion);
        Assert.Equal(b, (await Assert.ThrowsAsync<WrongExpectedVersionException>(() => stale)).StreamId);
        Assert.Equal(c, (await Assert.ThrowsAsync<WrongExpectedVersionException>(() => ahead)).StreamId);
        Assert.Equal(2, (await ReadAsync(a)).Count);
        Assert.Single(await ReadAsync(b));
        Assert.Empty(await ReadAsync(c));
    }

    [Fact]
    public async Task OneGroup_BadPayloadInOneStream_FailsOnlyThatStream()
    {
        var ct = TestContext.Current.CancellationToken;
        var (a, b) = (NewStream(), NewStream());
        await using var committer = Grouping();

        var good = committer.AppendAsync(new StreamAppend(a, 0, [Evt(1)]), ct);
        var bad = committer.AppendAsync(new StreamAppend(b, 0, [Evt(1, data: "{not json")]), ct);

        Assert.Equal(1, (await good).NextExpectedVersion);
        var ex = await Assert.ThrowsAsync<AppendFailedException>(() => bad);
        Assert.Equal("22P02", ex.SqlState);
        Assert.Empty(await ReadAsync(b));
        Assert.Single(await ReadAsync(a));
    }

    // One writer and a long linger: appends started together share one transaction.
    private GroupCommitter Grouping(bool setBased = true) =>
        new(DataSource, new GroupCommitOptions { Writers = 1, MaxStreams = 60, Linger = TimeSpan.FromMilliseconds(50), SetBased = setBased });

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task OneGroup_ConflictInOneStream_FailsOnlyThatStream_OnEitherPath(bool setBased)
    {
        var ct = TestContext.Current.CancellationToken;
        var (a, b, c, d) = (NewStream(), NewStream(), NewStream(), NewStream());
        await Store.AppendAsync(b, 0, [Evt(1)], ct);
        await Store.AppendAsync(d, 0, [Evt(1), Evt(2)], ct);
        await using var committer = Grouping(setBased);

        var ok = committer.AppendAsync(new StreamAppend(a, 0, [Evt(1), Evt(2)]), ct);
        var stale = committer.AppendAsync(new StreamAppend(b, 0, [Evt(2)]), ct);     // b is at 1
        var ahead = committer.AppendAsync(new StreamAppend(c, 5, [Evt(1)]), ct);     // c is empty
        var next = committer.AppendAsync(new StreamAppend(d, 2, [Evt(3)]), ct);

        Assert.Equal(2, (await ok).NextExpectedVersion);
        Assert.Equal(3, (await next).NextExpectedVersion);
        Assert.Equal(b, (await Assert.ThrowsAsync<WrongExpectedVersionException>(() => stale)).StreamId);
        Assert.Equal(c, (await Assert.ThrowsAsync<WrongExpectedVersionException>(() => ahead)).StreamId);
        Assert.Equal(2, (await ReadAsync(a)).Count);
        Assert.Single(await ReadAsync(b));
        Assert.Empty(await ReadAsync(c));
        Assert.Equal(3, (await ReadAsync(d)).Count);
        Assert.Equal((await ReadAsync(a))[0].TransactionId, (await ReadAsync(d))[2].TransactionId);
        Assert.Empty((await new ChainVerifier(DataSource).VerifyAsync(ct: ct)).Breaks);
    }

    // The set-based statement cannot see this conflict before its INSERT (the stream's head is where the caller
    // expects it; only the event id repeats one already stored), so the statement fails as a whole and the group
    // runs again stream by stream: the others commit, the offender gets its own error.
    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task OneGroup_RepeatedEventIdAtTheHead_FailsOnlyThatStream(bool setBased)
    {
        var ct = TestContext.Current.CancellationToken;
        var (a, b, c) = (NewStream(), NewStream(), NewStream());
        var stored = Evt(1);
        await Store.AppendAsync(b, 0, [stored], ct);
        await using var committer = Grouping(setBased);

        var first = committer.AppendAsync(new StreamAppend(a, 0, [Evt(1)]), ct);
        var repeat = committer.AppendAsync(new StreamAppend(b, 1, [Evt(2), stored with { Seq = null, DeviceTime = null }]), ct);
        var third = committer.AppendAsync(new StreamAppend(c, 0, [Evt(1), Evt(2), Evt(3)], new SnapshotWrite(1, """{"n":3}""", null)), ct);

        Assert.Equal(1, (await first).NextExpectedVersion);
        Assert.Equal(3, (await third).NextExpectedVersion);
        Assert.Equal(b, (await Assert.ThrowsAsync<WrongExpectedVersionException>(() => repeat)).StreamId);
        Assert.Single(await ReadAsync(b));
        Assert.Equal(3, (await Store.LoadSnapshotAsync(c, ct))?.Version);
        Assert.Empty((await new ChainVerifier(DataSource).VerifyAsync(ct: ct)).Breaks);
    }

    // The fallback from the set-based statement to the per-stream path is counted by reason (an operator tells races,
    // retries and bad input apart); a group that commits set-based counts nothing. The listener sees only this test's
    // meter (its own factory), not the other tests' committers in the same process.
    [Fact]
    public async Task Fallbacks_AreCountedByReason_AndACleanGroupCountsNone()
    {
        var ct = TestContext.Current.CancellationToken;
        using var meters = new TestMeterFactory();
        var fallbacks = new System.Collections.Concurrent.ConcurrentQueue<string>();
        using var listener = new System.Diagnostics.Metrics.MeterListener
        {
            InstrumentPublished = (i, l) =>
            {
                if (ReferenceEquals(i.Meter.Scope, meters) && i.Name == "pumpfleet.eventstore.group_append.fallbacks")
                {
                    l.EnableMeasurementEvents(i);
                }
            },
        };
        listener.SetMeasurementEventCallback<long>((_, v, tags, _) =>
        {
            foreach (var t in tags)
            {
                if (t.Key == "reason")
                {
                    for (var n = 0; n < v; n++)
                    {
                        fallbacks.Enqueue((string)t.Value!);
                    }
                }
            }
        });
        listener.Start();
        var (a, b, c, d) = (NewStream(), NewStream(), NewStream(), NewStream());
        var stored = Evt(1);
        await Store.AppendAsync(b, 0, [stored], ct);
        await using var committer = new GroupCommitter(DataSource,
            new GroupCommitOptions { Writers = 1, MaxStreams = 60, Linger = TimeSpan.FromMilliseconds(50) }, new EventStoreInstruments(meters));

        // A clean group: set-based, no fallback.
        await Task.WhenAll(committer.AppendAsync(new StreamAppend(a, 0, [Evt(1)]), ct), committer.AppendAsync(new StreamAppend(c, 0, [Evt(1)]), ct));
        Assert.Empty(fallbacks);

        // An event id already stored at the head: the statement fails, the group runs again per stream.
        var other = committer.AppendAsync(new StreamAppend(a, 1, [Evt(2)]), ct);
        var repeat = committer.AppendAsync(new StreamAppend(b, 1, [Evt(2), stored with { Seq = null, DeviceTime = null }]), ct);
        Assert.Equal(2, (await other).NextExpectedVersion);
        await Assert.ThrowsAsync<WrongExpectedVersionException>(() => repeat);
        Assert.Equal(["duplicate-event-id"], fallbacks);

        // One stream twice in a group: the set-based statement is not tried.
        var first = committer.AppendAsync(new StreamAppend(d, 0, [Evt(1)]), ct);
        var second = committer.AppendAsync(new StreamAppend(d, 1, [Evt(2)]), ct);
        await Task.WhenAll(first, second);
        Assert.Equal(["duplicate-event-id", "stream-repeated"], fallbacks);
        Assert.Equal(2, (await ReadAsync(d)).Count);
    }

    // Two committers (two silos, or a stale activation) race for the same version of one stream inside groups of
    // other streams: one wins that stream, the other's caller gets a concurrency error, and every other stream of
    // both groups commits, whichever path each group took.
    [Fact]
    public async Task TwoCommitters_RaceForOneStream_OneWins_TheirOtherStreamsCommit()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var left = Grouping();
        await using var right = Grouping();
        for (var round = 0; round < 10; round++)
        {
            var contested = NewStream();
            var others = Enumerable.Range(0, 6).Select(_ => NewStream()).ToArray();
            var appends = new List<Task<AppendResult>>();
            appends.AddRange(others.Take(3).Select(s => left.AppendAsync(new StreamAppend(s, 0, [Evt(1), Evt(2)]), ct)));
            var l = left.AppendAsync(new StreamAppend(contested, 0, [Evt(1)]), ct);
            var r = right.AppendAsync(new StreamAppend(contested, 0, [Evt(1)]), ct);
            appends.AddRange(others.Skip(3).Select(s => right.AppendAsync(new StreamAppend(s, 0, [Evt(1)]), ct)));

            await Task.WhenAll(appends);
            var outcomes = await Task.WhenAll(new[] { l, r }.Select(async t =>
            {
                try
                {
                    return (await t).NextExpectedVersion;
                }
                catch (WrongExpectedVersionException e) when (e.StreamId == contested)
                {
                    return -1;
                }
            }));

            Assert.Equal([-1, 1], outcomes.Order());
            Assert.Single(await ReadAsync(contested));
            foreach (var s in others)
            {
                Assert.NotEmpty(await ReadAsync(s));
            }
        }

        Assert.Empty((await new ChainVerifier(DataSource).VerifyAsync(ct: ct)).Breaks);
    }

    [Fact]
    public async Task Retry_OfACommittedAppend_IsAlreadyStored_AndStoresNothing()
    {
        var ct = TestContext.Current.CancellationToken;
        var stream = NewStream();
        EventToAppend[] batch = [Evt(1), Evt(2)];
        await Store.AppendAsync(new StreamAppend(stream, 0, batch), ct);

        var again = await Store.AppendAsync(new StreamAppend(stream, 0, batch), ct);

        Assert.True(again.AlreadyStored);
        Assert.Equal(2, again.NextExpectedVersion);
        Assert.Equal(2, (await ReadAsync(stream)).Count);
    }

    [Fact]
    public async Task Snapshot_IsStoredWithItsEvents_AndNotWhenTheAppendConflicts()
    {
        var ct = TestContext.Current.CancellationToken;
        var stream = NewStream();
        var until = new DateTimeOffset(2026, 11, 30, 1, 0, 0, TimeSpan.Zero);
        await Store.AppendAsync(new StreamAppend(stream, 0, [Evt(1), Evt(2)], new SnapshotWrite(3, """{"n":2}""", until)), ct);
        await Assert.ThrowsAsync<WrongExpectedVersionException>(() =>
            Store.AppendAsync(new StreamAppend(stream, 1, [Evt(3)], new SnapshotWrite(3, """{"n":99}""", null)), ct));

        var latest = await Store.LoadSnapshotAsync(stream, ct);
        Assert.NotNull(latest);
        Assert.Equal(2, latest.Version);
        Assert.Equal(3, latest.SchemaVersion);
        Assert.Equal("""{"n": 2}""", latest.State);
        var kept = await Store.LoadSnapshotAsOfAsync(stream, until, 3, ct);
        Assert.Equal(2, kept?.Version);
    }

    [Fact]
    public async Task Committer_MergesConcurrentAppendsOfDifferentStreams()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var committer = Grouping();
        var streams = Enumerable.Range(0, 20).Select(_ => NewStream()).ToArray();

        var results = await Task.WhenAll(streams.Select(s => committer.AppendAsync(new StreamAppend(s, 0, [Evt(1)]), ct)));

        Assert.All(results, r => Assert.Equal(1, r.NextExpectedVersion));
        var transactions = new HashSet<ulong>();
        foreach (var s in streams)
        {
            transactions.Add(Assert.Single(await ReadAsync(s)).TransactionId);
        }

        Assert.True(transactions.Count < streams.Length, $"{streams.Length} appends took {transactions.Count} transactions");
    }

    [Fact]
    public void Options_OutOfRange_AreRefused()
    {
        var v = new GroupCommitOptionsValidator();
        Assert.True(v.Validate(null, new GroupCommitOptions()).Succeeded);
        Assert.True(v.Validate(null, new GroupCommitOptions { MaxStreams = 61 }).Failed);
        Assert.True(v.Validate(null, new GroupCommitOptions { Writers = 0 }).Failed);
        Assert.True(v.Validate(null, new GroupCommitOptions { Linger = TimeSpan.FromMilliseconds(51) }).Failed);
    }

    /// <summary>
    /// Property: concurrent appends (fresh, stale, ahead, retried, bad) to a few streams through group commit never
    /// lose an acknowledged event, never store one twice, keep each stream's versions contiguous in append order, and
    /// report each conflict to the caller whose append it was (a refused append stores none of its events).
    /// </summary>
    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task Property_ConcurrentMixedAppends_NoLossNoDuplicatesPerStreamOrder(bool setBased)
    {
        var ct = TestContext.Current.CancellationToken;
        var random = new Random(Seed);
        await using var committer = new GroupCommitter(DataSource, new GroupCommitOptions { Writers = 2, MaxStreams = 6, Linger = TimeSpan.FromMilliseconds(1), SetBased = setBased });
        var streams = Enumerable.Range(0, 5).Select(_ => NewStream()).ToArray();
        var committed = streams.ToDictionary(s => s, _ => new List<Guid>()); // the model: each stream's ids in version order
        var batches = new List<(string Stream, EventToAppend[] Events)>();    // every batch that succeeded, to retry
        for (var round = 0; round < 25; round++)
        {
            var attempts = new List<(string Kind, StreamAppend Append)>();
            for (var i = random.Next(3, 12); i > 0; i--)
            {
                var stream = streams[random.Next(streams.Length)];
                var version = committed[stream].Count;
                var fresh = Enumerable.Range(0, random.Next(1, 4)).Select(_ => Evt()).ToArray();
                var kind = random.Next(10) switch
                {
                    0 when batches.Count > 0 => "retry",
                    1 when version > 0 => "stale",
                    2 => "ahead",
                    3 => "bad",
                    _ => "fresh",
                };
                attempts.Add(kind switch
                {
                    "retry" => batches[random.Next(batches.Count)] is var (s, e) ? ("retry", new StreamAppend(s, committed[s].IndexOf(e[0].EventId), e)) : default,
                    "stale" => ("stale", new StreamAppend(stream, version - 1, fresh)),
                    "ahead" => ("ahead", new StreamAppend(stream, version + 1, fresh)),
                    "bad" => ("bad", new StreamAppend(stream, version, [.. fresh[..^1], Evt(data: "{bad")])),
                    _ => ("fresh", new StreamAppend(stream, version, fresh)),
                });
            }

            var outcomes = await Task.WhenAll(attempts.Select(async a =>
            {
                try
                {
                    return (a.Kind, a.Append, Result: (AppendResult?)await committer.AppendAsync(a.Append, ct), Error: (Exception?)null);
                }
                catch (Exception e) when (e is WrongExpectedVersionException or AppendFailedException)
                {
                    return (a.Kind, a.Append, Result: null, Error: e);
                }
            }));

            var context = $"seed {Seed}, round {round}";
            var appended = new List<StreamAppend>();
            foreach (var (kind, append, result, error) in outcomes)
            {
                switch (kind)
                {
                    case "retry":
                        Assert.True(result is { AlreadyStored: true }, $"{context}: a retried batch must be reported already stored ({error?.Message})");
                        break;
                    case "stale":
                        Assert.True(error is WrongExpectedVersionException w0 && w0.StreamId == append.StreamId, $"{context}: a stale append must conflict");
                        break;
                    case "bad":
                        Assert.True(error is AppendFailedException or WrongExpectedVersionException, $"{context}: a bad payload must fail its own append");
                        break;
                    default:
                        // Fresh and ahead appends race with the round's other appends of the same stream: each either
                        // succeeded or was told, by stream, that it conflicted.
                        if (result is { AlreadyStored: false })
                        {
                            Assert.Equal(append.ExpectedVersion + append.Events.Count, result.NextExpectedVersion);
                            appended.Add(append);
                        }
                        else
                        {
                            Assert.True(error is WrongExpectedVersionException w && w.StreamId == append.StreamId, $"{context}: {error?.Message}");
                        }

                        break;
                }
            }

            // The successes of a stream chain exactly from where it was: no gap, no overlap.
            foreach (var append in appended.OrderBy(a => a.StreamId, StringComparer.Ordinal).ThenBy(a => a.ExpectedVersion))
            {
                Assert.True(append.ExpectedVersion == committed[append.StreamId].Count, $"{context}: {append.StreamId} appended at {append.ExpectedVersion}, stream at {committed[append.StreamId].Count}");
                committed[append.StreamId].AddRange(append.Events.Select(e => e.EventId));
                batches.Add((append.StreamId, append.Events.ToArray()));
            }

            // The database against the model: every acknowledged event once, in order, nothing else.
            foreach (var s in streams)
            {
                var stored = await ReadAsync(s);
                Assert.Equal(Enumerable.Range(1, stored.Count).Select(v => (long)v), stored.Select(e => e.Version));
                Assert.Equal(committed[s], stored.Select(e => e.EventId));
            }
        }

        var report = await new ChainVerifier(DataSource).VerifyAsync(ct: ct);
        Assert.Empty(report.Breaks);
        Assert.True(committed.Values.Sum(l => l.Count) > 50, "the property run appended too little to mean anything");
    }
}
