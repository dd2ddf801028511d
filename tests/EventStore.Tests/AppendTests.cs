using PumpFleet.TestSupport;

namespace PumpFleet.EventStore.Tests;

public sealed class AppendTests(PostgresFixture pg) : EventStoreTestBase(pg)
{
    [Fact]
    public async Task AppendAsync_NewStream_StoresEventsAtConsecutiveVersions()
    {
        var stream = NewStream();
        var ct = TestContext.Current.CancellationToken;
        var r1 = await Store.AppendAsync(stream, 0, [Evt(1, data: """{"a":1}"""), Evt(2)], ct);
        var r2 = await Store.AppendAsync(stream, r1.NextExpectedVersion, [Evt(5)], ct);

        Assert.Equal(2, r1.NextExpectedVersion);
        Assert.Equal(3, r2.NextExpectedVersion);
        var events = await ReadAsync(stream);
        Assert.Equal([1L, 2L, 3L], events.Select(e => e.Version));
        Assert.Equal([1L, 2L, 5L], events.Select(e => e.Seq!.Value));
        Assert.Equal("""{"a": 1}""", events[0].Data);
        Assert.Single(await ReadAsync(stream, after: 2));
    }

    [Fact]
    public async Task AppendAsync_PreservesEnvelope()
    {
        var stream = NewStream();
        var at = new DateTimeOffset(2026, 11, 24, 3, 0, 0, TimeSpan.Zero);
        var received = new DateTimeOffset(2026, 11, 24, 3, 0, 1, 500, TimeSpan.Zero);
        var e = new EventToAppend(Guid.NewGuid(), "dose.delivered", """{"volumeMl":0.02}""", 7, at, received, ClockSuspect: true,
            Metadata: """{"hubId":"H1"}""");
        await Store.AppendAsync(stream, 0, [e], TestContext.Current.CancellationToken);

        var stored = Assert.Single(await ReadAsync(stream));
        Assert.Equal(e.EventId, stored.EventId);
        Assert.Equal("dose.delivered", stored.Type);
        Assert.Equal(at, stored.DeviceTime);
        Assert.Equal(received, stored.ReceivedAt);
        Assert.True(stored.ClockSuspect);
        Assert.Equal("""{"hubId": "H1"}""", stored.Metadata);
        Assert.Equal(stream, stored.StreamId);
    }

    [Fact]
    public async Task AppendAsync_StaleExpectedVersion_ThrowsWrongExpectedVersion()
    {
        var stream = NewStream();
        var ct = TestContext.Current.CancellationToken;
        await Store.AppendAsync(stream, 0, [Evt(1)], ct);

        var ex = await Assert.ThrowsAsync<WrongExpectedVersionException>(() => Store.AppendAsync(stream, 0, [Evt(2)], ct));
        Assert.Equal(stream, ex.StreamId);
        Assert.Single(await ReadAsync(stream));
    }

    [Fact]
    public async Task AppendAsync_ExpectedVersionAheadOfStream_ThrowsAndStoresNothing()
    {
        var stream = NewStream();
        var ct = TestContext.Current.CancellationToken;
        await Store.AppendAsync(stream, 0, [Evt(1)], ct);

        await Assert.ThrowsAsync<WrongExpectedVersionException>(() => Store.AppendAsync(stream, 5, [Evt(2)], ct));
        Assert.Single(await ReadAsync(stream));
    }

    [Fact]
    public async Task AppendAsync_ConcurrentWritersOnOneStream_ExactlyOneWins()
    {
        var stream = NewStream();
        var ct = TestContext.Current.CancellationToken;
        await Store.AppendAsync(stream, 0, [Evt(1)], ct);

        var attempts = Enumerable.Range(0, 8)
            .Select(i => Task.Run(() => Store.AppendAsync(stream, 1, [Evt(100 + (i * 10)), Evt(101 + (i * 10))], ct), ct))
            .ToList();
        var outcomes = await Task.WhenAll(attempts.Select(async t =>
        {
            try
            {
                await t;
                return true;
            }
            catch (WrongExpectedVersionException)
            {
                return false;
            }
        }));

        Assert.Equal(1, outcomes.Count(x => x));
        Assert.Equal(3, (await ReadAsync(stream)).Count);
    }

    [Fact]
    public async Task AppendAsync_SameBatchTwice_StoredOnce()
    {
        var stream = NewStream();
        var ct = TestContext.Current.CancellationToken;
        var batch = new[] { Evt(1), Evt(2), Evt(3) };
        var first = await Store.AppendAsync(stream, 0, batch, ct);

        // The writer saw an error after the commit (ambiguous) and retries from the version it last knew.
        var retry = await Store.AppendAsync(stream, 0, batch, ct);

        Assert.False(first.AlreadyStored);
        Assert.True(retry.AlreadyStored);
        Assert.Equal(3, retry.NextExpectedVersion);
        Assert.Equal(3, (await ReadAsync(stream)).Count);
    }

    [Fact]
    public async Task AppendAsync_AmbiguousCommitThenOtherWriter_RetryIsRecognisedAsStored()
    {
        var stream = NewStream();
        var ct = TestContext.Current.CancellationToken;
        var batch = new[] { Evt(1), Evt(2) };
        await Store.AppendAsync(stream, 0, batch, ct);
        await Store.AppendAsync(stream, 2, [Evt(3)], ct);

        var retry = await Store.AppendAsync(stream, 0, batch, ct);

        Assert.True(retry.AlreadyStored);
        Assert.Equal(3, (await ReadAsync(stream)).Count);
    }

    [Fact]
    public async Task AppendAsync_SameSeqUnderNewEventId_IsRefused()
    {
        var stream = NewStream();
        var ct = TestContext.Current.CancellationToken;
        await Store.AppendAsync(stream, 0, [Evt(1)], ct);

        await Assert.ThrowsAsync<WrongExpectedVersionException>(() => Store.AppendAsync(stream, 1, [Evt(1)], ct));
        Assert.Single(await ReadAsync(stream));
    }

    [Fact]
    public async Task AppendAsync_PartlyConflictingBatch_StoresNothing()
    {
        var stream = NewStream();
        var ct = TestContext.Current.CancellationToken;
        await Store.AppendAsync(stream, 0, [Evt(2)], ct);

        await Assert.ThrowsAsync<WrongExpectedVersionException>(() => Store.AppendAsync(stream, 1, [Evt(3), Evt(2), Evt(4)], ct));
        Assert.Single(await ReadAsync(stream));
    }

    [Fact]
    public async Task ReadStreamBySeqAsync_ReturnsSeqOrderAfterCursor()
    {
        var stream = NewStream();
        var ct = TestContext.Current.CancellationToken;
        await Store.AppendAsync(stream, 0, [Evt(5), Evt(6), Evt(null, type: "gap.recorded")], ct);
        await Store.AppendAsync(stream, 3, [Evt(3), Evt(4)], ct);

        var page = await Store.ReadStreamBySeqAsync(stream, 3, 2, ct);

        Assert.Equal([4L, 5L], page.Select(e => e.Seq!.Value));
    }
}
