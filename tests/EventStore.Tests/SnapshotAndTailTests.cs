using PumpFleet.TestSupport;

namespace PumpFleet.EventStore.Tests;

/// <summary>
/// The one-statement activation read (issue 15): the latest snapshot of the asked schema and the events after it,
/// exactly what a snapshot read followed by a stream read after the snapshot's version gives.
/// </summary>
public sealed class SnapshotAndTailTests(PostgresFixture pg) : EventStoreTestBase(pg)
{
    private async Task<string> StreamOfAsync(int events)
    {
        var stream = NewStream();
        await Store.AppendAsync(stream, 0, [.. Enumerable.Range(1, events).Select(i => Evt(seq: i, data: $$"""{"n":{{i}}}"""))], TestContext.Current.CancellationToken);
        return stream;
    }

    [Fact]
    public async Task NoSnapshot_ReturnsEveryEvent()
    {
        var stream = await StreamOfAsync(5);

        var tail = await Store.LoadSnapshotAndTailAsync(stream, 3, TestContext.Current.CancellationToken);

        Assert.Null(tail.Snapshot);
        Assert.Equal([1L, 2, 3, 4, 5], tail.Events.Select(e => e.Version));
        Assert.Equal(await ReadAsync(stream), tail.Events);
    }

    [Fact]
    public async Task SnapshotAtTheHead_ReturnsItAndNoEvents()
    {
        var stream = await StreamOfAsync(4);
        await Store.SaveSnapshotAsync(new Snapshot(stream, 4, 3, """{"at":4}"""), TestContext.Current.CancellationToken);

        var tail = await Store.LoadSnapshotAndTailAsync(stream, 3, TestContext.Current.CancellationToken);

        Assert.Equal(new Snapshot(stream, 4, 3, """{"at": 4}"""), tail.Snapshot);
        Assert.Empty(tail.Events);
    }

    [Fact]
    public async Task SnapshotWithLaterEvents_ReturnsItAndTheEventsAfterIt()
    {
        var stream = await StreamOfAsync(7);
        await Store.SaveSnapshotAsync(new Snapshot(stream, 3, 3, """{"at":3}"""), TestContext.Current.CancellationToken);

        var tail = await Store.LoadSnapshotAndTailAsync(stream, 3, TestContext.Current.CancellationToken);

        Assert.Equal(3, tail.Snapshot!.Version);
        Assert.Equal(await ReadAsync(stream, after: 3), tail.Events);
        Assert.Equal([4L, 5, 6, 7], tail.Events.Select(e => e.Version));
    }

    [Fact]
    public async Task SnapshotOfAnotherSchema_IsIgnored_AndEveryEventReturned()
    {
        var stream = await StreamOfAsync(6);
        await Store.SaveSnapshotAsync(new Snapshot(stream, 5, 2, """{"old":true}"""), TestContext.Current.CancellationToken);

        var tail = await Store.LoadSnapshotAndTailAsync(stream, 3, TestContext.Current.CancellationToken);

        Assert.Null(tail.Snapshot);
        Assert.Equal(await ReadAsync(stream), tail.Events);
    }

    [Fact]
    public async Task UnknownStream_ReturnsNothing()
    {
        var tail = await Store.LoadSnapshotAndTailAsync(NewStream(), 3, TestContext.Current.CancellationToken);

        Assert.Null(tail.Snapshot);
        Assert.Empty(tail.Events);
    }
}
