using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Orleans.Runtime;
using Orleans.Streams;
using PumpFleet.EventStore;
using PumpFleet.EventStore.Log;

namespace PumpFleet.Streaming;

/// <summary>
/// The adapter: read-only. Events enter the log only through the event store's append (a grain's write), so there
/// is nothing to enqueue; producing on a log stream is refused.
/// </summary>
internal sealed class LogQueueAdapter(string name, IServiceProvider services) : IQueueAdapter
{
    public string Name => name;

    public bool IsRewindable => true;

    public StreamProviderDirection Direction => StreamProviderDirection.ReadOnly;

    public Task QueueMessageBatchAsync<T>(StreamId streamId, IEnumerable<T> events, StreamSequenceToken? token, Dictionary<string, object>? requestContext) =>
        throw new NotSupportedException(
            $"The '{name}' streams carry what the event store committed; append to the store (through the stream's grain) instead of producing on {streamId}.");

    public IQueueAdapterReceiver CreateReceiver(QueueId queueId)
    {
        // Resolved here, not in the factory: an Orleans client registers the provider to subscribe and never creates receivers.
        var partition = LogQueueMapper.PartitionOf(queueId);
        return new LogQueueReceiver(
            partition,
            CheckpointName(name, partition),
            services.GetRequiredService<ILogPartitionReader>(),
            services.GetRequiredService<ICheckpointStore>(),
            services.GetRequiredService<LogNotificationListener>(),
            services.GetRequiredService<IOptions<LogStreamOptions>>().Value,
            services.GetService<TimeProvider>() ?? TimeProvider.System,
            services.GetRequiredService<LogStreamInstruments>(),
            services.GetRequiredService<ILoggerFactory>().CreateLogger("PumpFleet.Streaming.LogQueueReceiver"));
    }

    /// <summary>The checkpoint name of one queue (kept by the event store's <see cref="ICheckpointStore"/>).</summary>
    public static string CheckpointName(string provider, int partition) => $"stream:{provider}:{partition}of{LogPartitioning.Count}";
}
