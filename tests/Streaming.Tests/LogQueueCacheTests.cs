// The cursor is driven the way Orleans 10.4.2 drives it: MoveNextWithResult defaults to the (now obsolete) MoveNext.
#pragma warning disable CS0618
using Orleans.Streams;

namespace PumpFleet.Streaming.Tests;

/// <summary>The queue cache on its own: purging (which moves the checkpoint), back-pressure and rewind.</summary>
public sealed class LogQueueCacheTests
{
    private static LogBatchContainer Item(string stream, long position) =>
        new(LogStreams.ForStream(stream), new CommittedEvent(stream, position, Guid.NewGuid(), "t", null, null, DateTimeOffset.UnixEpoch, false, "{}", null, 100, position),
            new LogSequenceToken(100, position, 0));

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
            Assert.Equal(p, ((LogBatchContainer)purged[^1]).Event.GlobalPosition);
            Assert.False(cache.IsUnderPressure());
        }

        Assert.False(idle.MoveNext());
        cache.AddToCache([Item("IDLE", 22)]);
        Assert.True(idle.MoveNext());
        Assert.Equal(22, ((LogBatchContainer)idle.GetCurrent(out _)!).Event.GlobalPosition);
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
        Assert.Equal([1L, 2L], purged.Select(b => ((LogBatchContainer)b).Event.GlobalPosition));
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
        Assert.Equal(4, ((LogBatchContainer)rewound.GetCurrent(out _)!).Event.GlobalPosition);
        Assert.Throws<QueueCacheMissException>(() => cache.GetCacheCursor(LogStreams.ForStream("S"), new LogSequenceToken(100, 2, 0)));
    }
}
