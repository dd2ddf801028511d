using Orleans.Runtime;
using Orleans.Streams;
using PumpFleet.EventStore;

namespace PumpFleet.Streaming;

/// <summary>
/// The committed events of one stream that one read of a partition returned, in the log's order: one delivery per
/// (stream, page) instead of one per event, so a consumer takes a page's events in one call. Each event keeps its own
/// token (<see cref="TokenOf"/>), which is what the consumer's <c>OnNextAsync</c> receives, so rewinding from a kept
/// token and deduping by stream version work as with one event per delivery. The container's own token is its first
/// event's, as Orleans expects of a batch (the pulling agent starts a new stream's consumers from it and hands it back
/// in the delivery handshake); the queue cache orders containers by it.
/// </summary>
[GenerateSerializer, Immutable, Alias("pumpfleet.log-batch.v2")]
public sealed class LogBatchContainer : IBatchContainer
{
    [NonSerialized]
    private GlobalCheckpoint? _pageEnd;

    /// <summary>Creates a container of <paramref name="events"/> (not empty, in the log's order) on stream <paramref name="streamId"/>.</summary>
    /// <param name="streamId">The Orleans stream.</param>
    /// <param name="events">The events, in the log's order.</param>
    /// <param name="kind">Orders the deliveries of one event on its different streams (<see cref="LogSequenceToken.EventIndex"/>).</param>
    public LogBatchContainer(StreamId streamId, IReadOnlyList<CommittedEvent> events, int kind)
    {
        ArgumentNullException.ThrowIfNull(events);
        if (events.Count == 0)
        {
            throw new ArgumentException("A batch carries at least one event.", nameof(events));
        }

        StreamId = streamId;
        Events = [.. events];
        Kind = kind;
        Token = TokenOf(Events[0]);
    }

    /// <inheritdoc />
    [Id(0)]
    public StreamId StreamId { get; }

    /// <summary>The events, in the log's order.</summary>
    [Id(1)]
    public CommittedEvent[] Events { get; }

    /// <summary>The kind of stream (0 a pump's, 1 a partition's, 2 a partition's live events): each event's token index.</summary>
    [Id(2)]
    public int Kind { get; }

    /// <summary>The token of the first event.</summary>
    [Id(3)]
    public LogSequenceToken Token { get; }

    /// <summary>
    /// When the receiver started the read that returned these events and when it returned (Unix ms; 0 when not
    /// stamped). Stamped on live containers only (<see cref="LogStreams.ForLive"/>): a live consumer finds them in the
    /// request context of its <c>OnNextAsync</c> (<see cref="LogStreams.ReadStartedKey"/>, <see cref="LogStreams.ReadKey"/>),
    /// which is how the commit → browser breakdown (bench/LiveBench) places the queue's read in the path.
    /// </summary>
    [Id(4)]
    public long ReadStartedMs { get; init; }

    /// <inheritdoc cref="ReadStartedMs" />
    [Id(5)]
    public long ReadMs { get; init; }

    /// <summary>
    /// When the receiver's read before that one started (Unix ms; 0 when none or not stamped). After an event's commit,
    /// it tells a wait for the queue's next read apart from a read that did not return the event yet (held back
    /// behind an older open transaction, or beyond a full page).
    /// </summary>
    [Id(6)]
    public long PreviousReadStartedMs { get; init; }

    /// <inheritdoc />
    public StreamSequenceToken SequenceToken => Token;

    /// <summary>The token of the last event.</summary>
    public LogSequenceToken LastToken => TokenOf(Events[^1]);

    /// <summary>
    /// Set by the receiver on the last container of a page in the cache's order (silo side only, not serialized): once
    /// it is delivered, so is the whole page, and the queue's checkpoint may move to the page's end.
    /// </summary>
    internal GlobalCheckpoint? PageEnd
    {
        get => _pageEnd;
        set => _pageEnd = value;
    }

    /// <summary>An event's token on this container's stream.</summary>
    public LogSequenceToken TokenOf(CommittedEvent e)
    {
        ArgumentNullException.ThrowIfNull(e);
        return new LogSequenceToken(e.TransactionId, e.GlobalPosition, Kind);
    }

    /// <summary>
    /// The events at or after <paramref name="from"/> (a consumer subscribing from a token inside this container), or
    /// this container when every event is; null when none is.
    /// </summary>
    public LogBatchContainer? From(StreamSequenceToken from)
    {
        ArgumentNullException.ThrowIfNull(from);
        if (Token.CompareTo(from) >= 0)
        {
            return this;
        }

        var rest = Events.Where(e => TokenOf(e).CompareTo(from) >= 0).ToArray();
        return rest.Length == 0 ? null : WithEvents(rest);
    }

    /// <summary>
    /// This container's first event alone and the rest (null when it holds one event), with the read's stamps on both.
    /// A cursor resumed from a consumer's token delivers the token's event on its own first (see LogQueueCache).
    /// </summary>
    internal (LogBatchContainer First, LogBatchContainer? Others) SplitFirst() =>
        Events.Length == 1
            ? (this, null)
            : (WithEvents(Events[..1]), WithEvents(Events[1..]));

    private LogBatchContainer WithEvents(CommittedEvent[] events) => new(StreamId, events, Kind)
    {
        ReadStartedMs = ReadStartedMs, ReadMs = ReadMs, PreviousReadStartedMs = PreviousReadStartedMs,
    };

    /// <inheritdoc />
    public IEnumerable<Tuple<T, StreamSequenceToken>> GetEvents<T>()
    {
        foreach (var e in Events)
        {
            if (e is T item)
            {
                yield return Tuple.Create(item, (StreamSequenceToken)TokenOf(e));
            }
        }
    }

    /// <summary>
    /// Puts the read's times in the request context of the delivery (the pulling agent clears it after the call), so
    /// the consumer's <c>OnNextAsync</c> can read them; false (nothing imported) when the container is not stamped.
    /// </summary>
    public bool ImportRequestContext()
    {
        if (ReadMs == 0)
        {
            return false;
        }

        RequestContext.Set(LogStreams.ReadStartedKey, ReadStartedMs);
        RequestContext.Set(LogStreams.ReadKey, ReadMs);
        RequestContext.Set(LogStreams.PreviousReadStartedKey, PreviousReadStartedMs);
        return true;
    }
}
