using Orleans.Runtime;
using Orleans.Streams;

namespace PumpFleet.Streaming;

/// <summary>Creates one <see cref="LogQueueCache"/> per queue.</summary>
internal sealed class LogQueueAdapterCache(LogStreamOptions options) : IQueueAdapterCache
{
    public IQueueCache CreateQueueCache(QueueId queueId) => new LogQueueCache(options.MaxUndelivered, options.RewindWindow);
}

/// <summary>
/// A queue's cache: the containers the receiver read, in token order, addressed by an absolute index so a cursor
/// parked at the end sees later items without being reset. Containers that every cursor has passed (a cursor holds the
/// item it returned last until its consumer asks for the next: the agent may still be delivering it) are handed back as
/// delivered (the receiver checkpoints them), then kept while the events they carry are within <c>rewindWindow</c>
/// events behind the delivered mark, so a consumer can subscribe from an older token; a token at or before what was
/// dropped is a <see cref="QueueCacheMissException"/>. Back-pressure counts events, not containers (a container
/// carries a page's events of one stream). Orleans' pulling agent calls it from one activation at a time, so it needs
/// no locking.
/// </summary>
internal sealed class LogQueueCache(int maxUndelivered, int rewindWindow) : IQueueCache
{
    private readonly List<IBatchContainer> _items = [];

    // Events carried by every container added up to and including _items[i] (a running total since the cache began),
    // and the absolute index of the first container of _items[i]'s page (one AddToCache call is one read).
    private readonly List<long> _eventsThrough = [];
    private readonly List<long> _pageStart = [];
    private readonly HashSet<Cursor> _cursors = [];
    private long _base;
    private long _eventsBeforeBase;
    private long _delivered;
    private long _eventsAdded;
    private StreamSequenceToken? _dropped;

    private long End => _base + _items.Count;

    // Events carried by the containers before index i.
    private long EventsBefore(long i) => i == _base ? _eventsBeforeBase : _eventsThrough[(int)(i - 1 - _base)];

    private long Undelivered => _eventsAdded - EventsBefore(_delivered);

    public int GetMaxAddCount() => (int)Math.Max(1, maxUndelivered - Undelivered);

    public bool IsUnderPressure() => Undelivered >= maxUndelivered;

    public void AddToCache(IList<IBatchContainer> messages)
    {
        ArgumentNullException.ThrowIfNull(messages);
        var page = End;
        foreach (var m in messages)
        {
            _pageStart.Add(page);
            _items.Add(m);
            _eventsAdded += m is LogBatchContainer b ? b.Events.Length : 1;
            _eventsThrough.Add(_eventsAdded);
        }
    }

    public bool TryPurgeFromCache(out IList<IBatchContainer> purgedItems)
    {
        // A cursor only holds back items of its own stream: the agent moves a cursor only when its stream has new
        // items, so an idle stream's cursor would otherwise pin every later item of the queue (and, at
        // MaxUndelivered, stop the queue). Skipping other streams' items delivers nothing to it.
        var low = End;
        foreach (var c in _cursors)
        {
            c.SkipOtherStreams();
            low = Math.Min(low, c.Held);
        }

        var delivered = new List<IBatchContainer>();
        for (var i = _delivered; i < low; i++)
        {
            delivered.Add(_items[(int)(i - _base)]);
        }

        _delivered = Math.Max(_delivered, low);
        // Keep the rewind window's events behind the delivered mark, and never drop an item a cursor still needs.
        var limit = Math.Min(_delivered, low);
        var drop = 0;
        while (_base + drop < limit && EventsBefore(_delivered) - EventsBefore(_base + drop + 1) >= rewindWindow)
        {
            drop++;
        }

        if (drop > 0)
        {
            for (var i = 0; i < drop; i++)
            {
                var last = LastToken(_items[i]);
                if (_dropped is null || last.CompareTo(_dropped) > 0)
                {
                    _dropped = last;
                }
            }

            _eventsBeforeBase = _eventsThrough[drop - 1];
            _items.RemoveRange(0, drop);
            _eventsThrough.RemoveRange(0, drop);
            _pageStart.RemoveRange(0, drop);
            _base += drop;
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

    private static StreamSequenceToken LastToken(IBatchContainer item) => item is LogBatchContainer b ? b.LastToken : item.SequenceToken;

    // Where a cursor from token starts: the first container of the page that holds token, or of the first page after
    // it (inclusive: resuming from a token replays that event). Containers are ordered by their first token, and one
    // page's containers (one per stream) overlap, so a container holding token may sit before the first one whose
    // first token is at or after it, but never in an earlier page; the cursor skips what ends before token and trims
    // the container that holds it.
    private long Locate(StreamSequenceToken? token)
    {
        if (token is null)
        {
            return End;
        }

        if (_dropped is not null && token.CompareTo(_dropped) <= 0)
        {
            throw new QueueCacheMissException(token, _dropped, _items.Count > 0 ? _items[^1].SequenceToken : _dropped);
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

        return lo == 0 ? _base : Math.Max(_base, _pageStart[lo - 1]);
    }

    private sealed class Cursor(LogQueueCache cache, StreamId streamId, StreamSequenceToken? from, long next) : IQueueCacheCursor
    {
        private IBatchContainer? _current;

        // The index of the item the last MoveNext returned, while the agent may still be delivering it: Orleans' pulling
        // agent asks for the next item only after the consumer took this one (or after it gave up on it, which the
        // failure handler reports). Until then the item is not delivered, so it must not be purged: its page's
        // checkpoint would move past it and a silo dying mid-delivery would lose it for good (found by the
        // delivery-under-faults run: a whole page missing for the subscriber after the SIGKILL).
        private long? _held;

        // A cursor made from a consumer's token delivers the event at that token on its own first. Orleans' agent moves a
        // cursor made from the token a consumer handed back in the delivery handshake one item on, past "the batch the
        // consumer already processed"; the token names that batch's first event only, and after a queue moved (or while
        // two agents briefly served one queue) this cache's container holding it can reach further than the one the
        // consumer got, so skipping the whole container lost its later events for that consumer (the
        // delivery-under-faults run: versions 4–15 of every stream of ten partitions). Skipping the one event loses
        // nothing; the rest of the container follows as the next item.
        private bool _split = from is not null;
        private LogBatchContainer? _rest;

        // The index of the container _rest came from (Next may have moved on since: the purge skips other streams' items).
        private long _restAt;

        public long Next { get; private set; } = next;

        /// <summary>The first item this cursor's consumer has not finished with (the purge keeps it and everything after).</summary>
        public long Held => _held ?? Next;

        public IBatchContainer? GetCurrent(out Exception? exception)
        {
            exception = null;
            return _current;
        }

        public bool MoveNext()
        {
            // Asked for the next item: the consumer is done with the previous one.
            _held = null;
            if (_rest is not null)
            {
                _current = _rest;
                _rest = null;
                _held = _restAt;
                return true;
            }

            while (Next < cache.End)
            {
                var item = cache._items[(int)(Next - cache._base)];
                Next++;
                // A token from the future (a consumer resuming past what this cache has read) skips what it has seen;
                // a token inside a container gets that container's events from the token on.
                if (Wanted(item))
                {
                    _current = from is not null && item is LogBatchContainer b ? b.From(from) ?? item : item;
                    if (_split && _current is LogBatchContainer c && c.Token.CompareTo(from) == 0)
                    {
                        (_current, _rest) = c.SplitFirst();
                        _restAt = Next - 1;
                    }

                    _split = false;
                    _held = Next - 1;
                    return true;
                }
            }

            _current = null;
            return false;
        }

        public void SkipOtherStreams()
        {
            while (Next < cache.End && !Wanted(cache._items[(int)(Next - cache._base)]))
            {
                Next++;
            }
        }

        private bool Wanted(IBatchContainer item) =>
            item.StreamId.Equals(streamId) && (from is null || LastToken(item).CompareTo(from) >= 0);

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
