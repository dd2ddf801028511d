using Orleans.Runtime;
using Orleans.Streams;

namespace PumpFleet.Streaming;

/// <summary>Creates one <see cref="LogQueueCache"/> per queue.</summary>
internal sealed class LogQueueAdapterCache(LogStreamOptions options) : IQueueAdapterCache
{
    public IQueueCache CreateQueueCache(QueueId queueId) => new LogQueueCache(options.MaxUndelivered, options.RewindWindow);
}

/// <summary>
/// A queue's cache: the items the receiver read, in read (token) order, addressed by an absolute index so a cursor
/// parked at the end sees later items without being reset. Items that every cursor has passed are handed back as
/// delivered (the receiver checkpoints them), then kept for <c>rewindWindow</c> more items so a consumer can
/// subscribe from an older token; a token older than what is kept is a <see cref="QueueCacheMissException"/>.
/// Orleans' pulling agent calls it from one activation at a time, so it needs no locking.
/// </summary>
internal sealed class LogQueueCache(int maxUndelivered, int rewindWindow) : IQueueCache
{
    private readonly List<IBatchContainer> _items = [];
    private readonly HashSet<Cursor> _cursors = [];
    private long _base;
    private long _delivered;

    private long End => _base + _items.Count;

    public int GetMaxAddCount() => Math.Max(1, maxUndelivered - (int)(End - _delivered));

    public bool IsUnderPressure() => End - _delivered >= maxUndelivered;

    public void AddToCache(IList<IBatchContainer> messages)
    {
        ArgumentNullException.ThrowIfNull(messages);
        _items.AddRange(messages);
    }

    public bool TryPurgeFromCache(out IList<IBatchContainer> purgedItems)
    {
        var low = End;
        foreach (var c in _cursors)
        {
            low = Math.Min(low, c.Next);
        }

        var delivered = new List<IBatchContainer>();
        for (var i = _delivered; i < low; i++)
        {
            delivered.Add(_items[(int)(i - _base)]);
        }

        _delivered = Math.Max(_delivered, low);
        // Keep the rewind window behind the delivered mark, and never drop an item a cursor still needs.
        var newBase = Math.Min(_delivered - rewindWindow, low);
        if (newBase > _base)
        {
            _items.RemoveRange(0, (int)(newBase - _base));
            _base = newBase;
        }

        purgedItems = delivered;
        return delivered.Count > 0;
    }

#pragma warning disable CS0672, CS0618 // the legacy member is still abstract in 10.4.2 and is what TryGetCacheCursor calls
    public IQueueCacheCursor GetCacheCursor(StreamId streamId, StreamSequenceToken? token)
#pragma warning restore CS0672, CS0618
    {
        var cursor = new Cursor(this, streamId, token, Locate(token));
        _cursors.Add(cursor);
        return cursor;
    }

    // The index of the first item at or after token (inclusive: resuming from a token replays that event).
    private long Locate(StreamSequenceToken? token)
    {
        if (token is null)
        {
            return End;
        }

        if (_items.Count > 0 && token.CompareTo(_items[0].SequenceToken) < 0 && _base > 0)
        {
            throw new QueueCacheMissException(token, _items[0].SequenceToken, _items[^1].SequenceToken);
        }

        int lo = 0, hi = _items.Count;
        while (lo < hi)
        {
            var mid = (lo + hi) >>> 1;
            if (_items[mid].SequenceToken.CompareTo(token) < 0)
            {
                lo = mid + 1;
            }
            else
            {
                hi = mid;
            }
        }

        return _base + lo;
    }

    private sealed class Cursor(LogQueueCache cache, StreamId streamId, StreamSequenceToken? from, long next) : IQueueCacheCursor
    {
        private IBatchContainer? _current;

        public long Next { get; private set; } = next;

        public IBatchContainer? GetCurrent(out Exception? exception)
        {
            exception = null;
            return _current;
        }

        public bool MoveNext()
        {
            while (Next < cache.End)
            {
                var item = cache._items[(int)(Next - cache._base)];
                Next++;
                // A token from the future (a consumer resuming past what this cache has read) skips what it has seen.
                if (item.StreamId.Equals(streamId) && (from is null || item.SequenceToken.CompareTo(from) >= 0))
                {
                    _current = item;
                    return true;
                }
            }

            _current = null;
            return false;
        }

        public void Refresh(StreamSequenceToken token)
        {
            // Absolute indexes: a cursor at the end already points at the next item to be added.
        }

        public void RecordDeliveryFailure()
        {
            // The failure handler (LogDeliveryFailureHandler) records it; the item stays in order for the checkpoint.
        }

        public void Dispose() => cache._cursors.Remove(this);
    }
}
