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
        // (Each item is delivered once the busy consumer asks for the next one, so the purge hands back up to the one before.)
        for (var p = 2; p <= 21; p++)
        {
            cache.AddToCache([Item("BUSY", p)]);
            Assert.True(busy.MoveNext());
            Assert.True(cache.TryPurgeFromCache(out var purged));
            Assert.Equal(p - 1, Position(purged[^1]));
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
        // Item 1 is with the consumer now, not yet taken: nothing is delivered until the consumer asks for the next.
        Assert.False(cache.TryPurgeFromCache(out _));
        Assert.True(slow.MoveNext());
        Assert.True(cache.TryPurgeFromCache(out var purged));
        Assert.Equal([1L, 2L], purged.Select(Position));
    }

    [Fact]
    public void AnItemBeingDelivered_IsNotPurged_SoItsPageCheckpointWaits_UntilTheConsumerAsksForTheNext()
    {
        // Orleans' agent: MoveNext, deliver the current item (retrying as long as it takes), then MoveNext again. A silo
        // dying between the two must not have checkpointed the item it was still delivering.
        var cache = new LogQueueCache(maxUndelivered: 100, rewindWindow: 0);
        var consumer = cache.GetCacheCursor(LogStreams.ForStream("S"), null);
        var first = Item("S", 1);
        first.PageEnd = new(100, 1);
        var second = Item("S", 2);
        second.PageEnd = new(100, 2);
        cache.AddToCache([first]);
        cache.AddToCache([second]);

        Assert.True(consumer.MoveNext());
        Assert.Equal(1, Position(consumer.GetCurrent(out _)!));
        Assert.False(cache.TryPurgeFromCache(out _));   // being delivered

        Assert.True(consumer.MoveNext());                // delivered; now delivering 2
        Assert.True(cache.TryPurgeFromCache(out var purged));
        Assert.Equal([1L], purged.Select(Position));

        Assert.False(consumer.MoveNext());               // 2 delivered, nothing left
        Assert.True(cache.TryPurgeFromCache(out purged));
        Assert.Equal([2L], purged.Select(Position));
    }

    [Fact]
    public void ACursorFromAConsumersToken_GivesThatEventAlone_SoTheAgentsSkipOfTheProcessedBatch_LosesNothingAfterIt()
    {
        // Another agent delivered the consumer a container that began at position 2 (its handshake token names only that
        // first event); this cache read the page with positions 1–5 for the stream in one container.
        var cache = new LogQueueCache(maxUndelivered: 100, rewindWindow: 100);
        var events = Enumerable.Range(1, 5).Select(p => Event("S", p)).ToList();
        cache.AddToCache([new LogBatchContainer(LogStreams.ForStream("S"), events, 0)]);
        var token = new LogSequenceToken(100, 2, 0);

        // What Orleans' agent does on a handshake mismatch: a cursor from the consumer's token, moved one item on.
        var cursor = cache.GetCacheCursor(LogStreams.ForStream("S"), token);
        Assert.True(cursor.MoveNext());
        Assert.Equal([2L], ((LogBatchContainer)cursor.GetCurrent(out _)!).Events.Select(e => e.GlobalPosition));
        Assert.True(cursor.MoveNext());
        Assert.Equal([3L, 4L, 5L], ((LogBatchContainer)cursor.GetCurrent(out _)!).Events.Select(e => e.GlobalPosition));
        Assert.False(cache.TryPurgeFromCache(out _));   // the rest is being delivered: the container stays
        Assert.False(cursor.MoveNext());
        Assert.True(cache.TryPurgeFromCache(out var purged));
        Assert.Single(purged);

        // A token at a container's first event splits it the same way; a cursor without a token never splits.
        var fresh = new LogQueueCache(maxUndelivered: 100, rewindWindow: 100);
        fresh.AddToCache([new LogBatchContainer(LogStreams.ForStream("S"), events, 0)]);
        var atFirst = fresh.GetCacheCursor(LogStreams.ForStream("S"), new LogSequenceToken(100, 1, 0));
        Assert.True(atFirst.MoveNext());
        Assert.Single(((LogBatchContainer)atFirst.GetCurrent(out _)!).Events);
        var whole = new LogQueueCache(maxUndelivered: 100, rewindWindow: 100);
        var live = whole.GetCacheCursor(LogStreams.ForStream("S"), null);
        whole.AddToCache([new LogBatchContainer(LogStreams.ForStream("S"), events, 0)]);
        Assert.True(live.MoveNext());
        Assert.Equal(5, ((LogBatchContainer)live.GetCurrent(out _)!).Events.Length);
    }

    [Fact]
    public void TheRestOfASplitContainer_StaysHeld_WhileThePurgeSkipsOtherStreamsItems()
    {
        // The purge moves an idle-looking cursor over other streams' items between two MoveNext calls; the rest of the
        // split container is still the item being delivered and must keep its page from being handed back.
        var cache = new LogQueueCache(maxUndelivered: 100, rewindWindow: 0);
        var events = Enumerable.Range(1, 5).Select(p => Event("S", p)).ToList();
        cache.AddToCache([new LogBatchContainer(LogStreams.ForStream("S"), events, 0)]);
        cache.AddToCache([Item("T", 6), Item("T", 7)]);
        var cursor = cache.GetCacheCursor(LogStreams.ForStream("S"), new LogSequenceToken(100, 2, 0));

        Assert.True(cursor.MoveNext());                  // position 2 alone
        Assert.False(cache.TryPurgeFromCache(out _));    // skips T's items for this cursor, holds S's container
        Assert.True(cursor.MoveNext());                  // the rest, 3–5, now being delivered
        Assert.Equal([3L, 4L, 5L], ((LogBatchContainer)cursor.GetCurrent(out _)!).Events.Select(e => e.GlobalPosition));
        Assert.False(cache.TryPurgeFromCache(out _));
        Assert.False(cursor.MoveNext());
        Assert.True(cache.TryPurgeFromCache(out var purged));
        Assert.Equal(3, purged.Count);
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

        // The pulling agent's handshake: a cursor from a delivered container's token, moved once, is past that token's
        // event only (the token names a container's first event, and another agent's container may have ended sooner).
        using var partition = cache.GetCacheCursor(LogStreams.ForPartition(0), new LogSequenceToken(100, 1, 1));
        Assert.True(partition.MoveNext());
        Assert.Equal([1L], ((LogBatchContainer)partition.GetCurrent(out _)!).Events.Select(e => e.GlobalPosition));
        Assert.True(partition.MoveNext());
        Assert.Equal([2L, 3L, 4L, 5L, 6L, 7L, 8L], ((LogBatchContainer)partition.GetCurrent(out _)!).Events.Select(e => e.GlobalPosition));
        Assert.True(partition.MoveNext());
        Assert.Equal([9L], ((LogBatchContainer)partition.GetCurrent(out _)!).Events.Select(e => e.GlobalPosition));
    }
}
