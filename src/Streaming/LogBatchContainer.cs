using Orleans.Runtime;
using Orleans.Streams;

namespace PumpFleet.Streaming;

/// <summary>One committed event delivered on one stream (its own, or its partition's).</summary>
[GenerateSerializer, Immutable, Alias("pumpfleet.log-batch.v1")]
public sealed class LogBatchContainer(StreamId streamId, CommittedEvent @event, LogSequenceToken token) : IBatchContainer
{
    /// <inheritdoc />
    [Id(0)]
    public StreamId StreamId { get; } = streamId;

    /// <summary>The event.</summary>
    [Id(1)]
    public CommittedEvent Event { get; } = @event;

    /// <summary>The event's token on this stream.</summary>
    [Id(2)]
    public LogSequenceToken Token { get; } = token;

    /// <inheritdoc />
    public StreamSequenceToken SequenceToken => Token;

    /// <inheritdoc />
    public IEnumerable<Tuple<T, StreamSequenceToken>> GetEvents<T>() =>
        Event is T item ? [Tuple.Create(item, (StreamSequenceToken)Token)] : [];

    /// <inheritdoc />
    public bool ImportRequestContext() => false;
}
