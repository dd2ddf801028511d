using Orleans.Runtime;
using PumpFleet.EventStore.Log;

namespace PumpFleet.Streaming;

/// <summary>
/// Names of the log stream provider. Every stream of the event store (a pump's, keyed by serial; a cohort's,
/// <c>cohort:…</c>) is the Orleans stream <c>(<see cref="Namespace"/>, stream id)</c>; each partition of the log is also
/// the stream <c>(<see cref="PartitionNamespace"/>, partition)</c>, which carries every event of that partition (a
/// fleet-wide consumer such as the live dashboard subscribes to the <see cref="LogPartitioning.Count"/> partition
/// streams instead of one stream per pump).
/// </summary>
public static class LogStreams
{
    /// <summary>The provider's name in configuration and in <c>GetStreamProvider</c>.</summary>
    public const string ProviderName = "pumpfleet-log";

    /// <summary>Namespace of the per-stream (per-pump) streams.</summary>
    public const string Namespace = "pumpfleet.log";

    /// <summary>Namespace of the per-partition streams.</summary>
    public const string PartitionNamespace = "pumpfleet.log.partition";

    /// <summary>The Orleans stream of an event-store stream (a pump's serial).</summary>
    public static StreamId ForStream(string streamId) => StreamId.Create(Namespace, streamId);

    /// <summary>The Orleans stream carrying every event of one log partition.</summary>
    public static StreamId ForPartition(int partition) =>
        StreamId.Create(PartitionNamespace, partition.ToString(System.Globalization.CultureInfo.InvariantCulture));

    /// <summary>Every partition stream.</summary>
    public static IEnumerable<StreamId> AllPartitions() => Enumerable.Range(0, LogPartitioning.Count).Select(ForPartition);
}
