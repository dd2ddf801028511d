// The cursor is driven the way Orleans 10.4.2 drives it: MoveNextWithResult defaults to the (now obsolete) MoveNext.
#pragma warning disable CS0618
using Orleans.Streams;

namespace PumpFleet.Streaming.Tests;

/// <summary>The queue cache on its own: purging (which moves the checkpoint), back-pressure and rewind, with batch containers.</summary>
public sealed class LogQueueCacheTests
{
    private static CommittedEvent Event(string stream, long position, string type = "t") =>
        new(stream, position, Guid.NewGuid(), type, null, null, DateTimeOffset.UnixEpoch, false, "{}", null, 100, position);

    private static LogBatchContainer Item(string stream, long position) => new(LogStreams.ForStream(stream), [Event(stream, position)], 0);

    private static long Position(IBatchContainer b) => ((LogBatchContainer)b).Events[^1].GlobalPosition;

    [Fact]
    public void AnIdleStreamsCursor_DoesNotHoldBackOtherStreamsItems()
    {
        var cache = new LogQueueCache(maxUndelivered: 16, rewindWindow: 0);
        cache.AddToCache([Item("IDLE", 1)]);
        var idle = cache.GetCacheCursor(LogStreams.ForStream("IDLE"), null);
        var busy = cache.GetCacheCursor(LogStreams.ForStream("BUSY"), null);
        // The idle stream's consumer has nothing new; the busy one gets twenty items, more than the cache may hold undelivered.
        for (var p = 2; p <= 21; p++)
        {
            cache.AddToCache([Item("BUSY", p)]);
            Assert.True(busy.MoveNext());
            Assert.True(cache.TryPurgeFromCache(out var purged));
            Assert.Equal(p, Position(purged[^1]));
            Assert.False(cache.IsUnderPressure());
        }

        Assert.False(idle.MoveNext());
        cache.AddToCache([Item("IDLE", 22)]);
        Assert.True(idle.MoveNext());
        Assert.Equal(22, Position(idle.GetCurrent(out _)!));
    }

    [Fact]
    public void AnUnreadItem_HoldsThePurge_UntilItsConsumerMovesOn()
    {
        var cache = new LogQueueCache(maxUndelivered: 4, rewindWindow: 0);
        var slow = cache.GetCacheCursor(LogStreams.ForStream("S"), new LogSequenceToken(0, 0, 0));
        cache.AddToCache([Item("S", 1), Item("T", 2), Item("S", 3), Item("T", 4)]);
        Assert.False(cache.TryPurgeFromCache(out _));
        Assert.True(cache.IsUnderPressure());
        Assert.True(slow.MoveNext());
        Assert.True(cache.TryPurgeFromCache(out var purged));
        Assert.Equal([1L, 2L], purged.Select(Position));
    }

    [Fact]
    public void Rewind_WithinTheWindow_AndAMissBeyondIt()
    {
        var cache = new LogQueueCache(maxUndelivered: 100, rewindWindow: 3);
        cache.AddToCache([.. Enumerable.Range(1, 6).Select(p => Item("S", p))]);
        Assert.True(cache.TryPurgeFromCache(out var purged));
        Assert.Equal(6, purged.Count);
        var rewound = cache.GetCacheCursor(LogStreams.ForStream("S"), new LogSequenceToken(100, 4, 0));
        Assert.True(rewound.MoveNext());
        Assert.Equal(4, Position(rewound.GetCurrent(out _)!));
        Assert.Throws<QueueCacheMissException>(() => cache.GetCacheCursor(LogStreams.ForStream("S"), new LogSequenceToken(100, 2, 0)));
    }

    [Fact]
    public void APage_IsOneContainerPerStream_WithEachEventsOwnToken_AndTheLiveTypesOnTheLiveStream()
    {
        // Positions 1..6 of partition 3: pump A gets 1, 3, 5 (5 an anomaly), pump B gets 2, 4, 6.
        var page = Enumerable.Range(1, 6).Select(p => Event(p % 2 == 1 ? "A" : "B", p, p == 5 ? "anomaly.detected" : "dose.delivered")).ToList();
        var batches = LogQueueReceiver.ToBatches(3, page).Cast<LogBatchContainer>().ToList();

        Assert.Equal(4, batches.Count);
        var a = batches.Single(b => b.StreamId == LogStreams.ForStream("A"));
        Assert.Equal([1L, 3L, 5L], a.Events.Select(e => e.GlobalPosition));
        Assert.Equal([1L, 3L, 5L], a.GetEvents<CommittedEvent>().Select(t => ((LogSequenceToken)t.Item2).SequenceNumber));
        var partition = batches.Single(b => b.StreamId == LogStreams.ForPartition(3));
        Assert.Equal([1L, 2L, 3L, 4L, 5L, 6L], partition.Events.Select(e => e.GlobalPosition));
        Assert.All(partition.GetEvents<CommittedEvent>(), t => Assert.Equal(1, t.Item2.EventIndex));
        var live = batches.Single(b => b.StreamId == LogStreams.ForLive(3));
        Assert.Equal([5L], live.Events.Select(e => e.GlobalPosition));
        // In token order (the cache's binary search needs it), and only the last one carries the page's end.
        Assert.Equal(batches.OrderBy(b => b.SequenceToken).ToList(), batches);
        Assert.Equal([null, null, null, new EventStore.GlobalCheckpoint(100, 6)], batches.Select(b => b.PageEnd));
    }

    [Fact]
    public void WithoutPumpStreams_APageIsThePartitionAndLiveContainersOnly()
    {
        // Streaming:PumpStreams off (the default): nothing on the pumps' own streams, so no rendezvous grain per pump.
        var page = Enumerable.Range(1, 6).Select(p => Event(p % 2 == 1 ? "A" : "B", p, p == 5 ? "anomaly.detected" : "dose.delivered")).ToList();
        var batches = LogQueueReceiver.ToBatches(3, page, pumpStreams: false).Cast<LogBatchContainer>().ToList();

        Assert.Equal(2, batches.Count);
        Assert.Single(batches, b => b.StreamId == LogStreams.ForLive(3));
        Assert.Equal([1L, 2L, 3L, 4L, 5L, 6L], batches.Single(b => b.StreamId == LogStreams.ForPartition(3)).Events.Select(e => e.GlobalPosition));
        Assert.Equal(new EventStore.GlobalCheckpoint(100, 6), batches[^1].PageEnd);
    }

    [Fact]
    public void BackPressure_CountsEvents_NotContainers()
    {
        var cache = new LogQueueCache(maxUndelivered: 10, rewindWindow: 0);
        using var cursor = cache.GetCacheCursor(LogStreams.ForPartition(0), null);
        cache.AddToCache(LogQueueReceiver.ToBatches(0, Enumerable.Range(1, 4).Select(p => Event("A", p))));
        // Two containers (pump A's and the partition's) carrying four events each: 8 undelivered events.
        Assert.False(cache.IsUnderPressure());
        Assert.Equal(2, cache.GetMaxAddCount());
        cache.AddToCache(LogQueueReceiver.ToBatches(0, [Event("A", 5)]));
        Assert.True(cache.IsUnderPressure());
        while (cursor.MoveNext())
        {
        }

        Assert.True(cache.TryPurgeFromCache(out var purged));
        Assert.Equal(4, purged.Count);
        Assert.False(cache.IsUnderPressure());
        Assert.Equal(10, cache.GetMaxAddCount());
    }

    [Fact]
    public void ACursorFromATokenInsideAContainer_GetsTheEventsFromThatToken_EvenWhenAnotherStreamsContainerEndsBeforeIt()
    {
        var cache = new LogQueueCache(maxUndelivered: 100, rewindWindow: 100);
        // Pump A has 1..8, pump B only 2..3: ordered by first token the page is A, partition, B, so B (ending at 3)
        // sits after A although A holds position 5.
        var page = Enumerable.Range(1, 8).Select(p => Event(p is 2 or 3 ? "B" : "A", p)).ToList();
        cache.AddToCache(LogQueueReceiver.ToBatches(0, page));
        cache.AddToCache(LogQueueReceiver.ToBatches(0, [Event("A", 9)]));

        using var a = cache.GetCacheCursor(LogStreams.ForStream("A"), new LogSequenceToken(100, 5, 0));
        var seen = new List<long>();
        while (a.MoveNext())
        {
            seen.AddRange(((LogBatchContainer)a.GetCurrent(out _)!).GetEvents<CommittedEvent>().Select(t => t.Item1.GlobalPosition));
        }

        Assert.Equal([5L, 6L, 7L, 8L, 9L], seen);

        // The pulling agent's handshake: a cursor from a delivered container's token, moved once, is past that container.
        using var partition = cache.GetCacheCursor(LogStreams.ForPartition(0), new LogSequenceToken(100, 1, 1));
        Assert.True(partition.MoveNext());
        Assert.Equal(1, ((LogBatchContainer)partition.GetCurrent(out _)!).Events[0].GlobalPosition);
        Assert.True(partition.MoveNext());
        Assert.Equal([9L], ((LogBatchContainer)partition.GetCurrent(out _)!).Events.Select(e => e.GlobalPosition));
    }
}
