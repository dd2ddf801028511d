using Orleans.Runtime;
using Orleans.Streams;
using PumpFleet.EventStore.Log;

namespace PumpFleet.Streaming;

/// <summary>
/// Queue i is partition i of the log (<see cref="LogPartitioning"/>): a stream's queue is its partition, the same one
/// migration 007 stores with its events, so the receiver of that queue is the one that reads them.
/// </summary>
public sealed class LogQueueMapper : IConsistentRingStreamQueueMapper
{
    private readonly QueueId[] _queues;
    private readonly uint[] _ringPositions;

    /// <summary>Creates the mapper of provider <paramref name="providerName"/>.</summary>
    public LogQueueMapper(string providerName)
    {
        _queues = new QueueId[LogPartitioning.Count];
        _ringPositions = new uint[LogPartitioning.Count];
        for (var p = 0; p < _queues.Length; p++)
        {
            // Queues sit evenly on Orleans' consistent ring; each silo reads the queues in its range of the ring, so
            // when a silo leaves or dies its range, and its queues, go to its neighbours.
            _ringPositions[p] = (uint)((ulong)p * uint.MaxValue / (ulong)_queues.Length);
            _queues[p] = QueueId.GetQueueId(providerName, (uint)p, _ringPositions[p]);
        }
    }

    /// <summary>The partition a queue reads.</summary>
    public static int PartitionOf(QueueId queue) => (int)queue.GetNumericId();

    /// <inheritdoc />
    public IEnumerable<QueueId> GetAllQueues() => _queues;

    /// <inheritdoc />
    public IEnumerable<QueueId> GetQueuesForRange(IRingRange range)
    {
        ArgumentNullException.ThrowIfNull(range);
        for (var p = 0; p < _queues.Length; p++)
        {
            if (range.InRange(_ringPositions[p]))
            {
                yield return _queues[p];
            }
        }
    }

    /// <inheritdoc />
    public QueueId GetQueueForStream(StreamId streamId)
    {
        var ns = streamId.GetNamespace();
        var key = streamId.GetKeyAsString();
        return ns switch
        {
            LogStreams.Namespace => _queues[LogPartitioning.PartitionOf(key)],
            LogStreams.PartitionNamespace or LogStreams.LiveNamespace when int.TryParse(key, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var p)
                && p is >= 0 and < LogPartitioning.Count => _queues[p],
            _ => throw new ArgumentException($"Stream '{streamId}' is not a stream of the event log (namespace '{LogStreams.Namespace}', '{LogStreams.PartitionNamespace}' or '{LogStreams.LiveNamespace}').", nameof(streamId)),
        };
    }
}
