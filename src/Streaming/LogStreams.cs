using Orleans.Runtime;
using PumpFleet.EventStore.Log;

namespace PumpFleet.Streaming;

/// <summary>
/// Names of the log stream provider. Every stream of the event store (a pump's, keyed by serial; a cohort's,
/// <c>cohort:…</c>) is the Orleans stream <c>(<see cref="Namespace"/>, stream id)</c>; each partition of the log is also
/// the stream <c>(<see cref="PartitionNamespace"/>, partition)</c>, which carries every event of that partition (a
/// fleet-wide consumer such as the live dashboard subscribes to the <see cref="LogPartitioning.Count"/> partition
/// streams instead of one stream per pump). The events that change what a dashboard shows (<see cref="IsLive"/>) are
/// also on the stream <c>(<see cref="LiveNamespace"/>, partition)</c>, so a live view subscribes to those 16 streams and
/// is never handed a dose event.
/// </summary>
public static class LogStreams
{
    /// <summary>The provider's name in configuration and in <c>GetStreamProvider</c>.</summary>
    public const string ProviderName = "pumpfleet-log";

    /// <summary>Namespace of the per-stream (per-pump) streams.</summary>
    public const string Namespace = "pumpfleet.log";

    /// <summary>Namespace of the per-partition streams.</summary>
    public const string PartitionNamespace = "pumpfleet.log.partition";

    /// <summary>Namespace of the per-partition streams of the live event types only (<see cref="IsLive"/>).</summary>
    public const string LiveNamespace = "pumpfleet.log.live";

    /// <summary>
    /// Request-context key of a live delivery: when the queue's receiver started the read that returned the event
    /// (Unix ms, a <see cref="long"/>; <see cref="LogBatchContainer.ReadStartedMs"/>).
    /// </summary>
    public const string ReadStartedKey = "pf.log.read-started";

    /// <summary>Request-context key of a live delivery: when that read returned (Unix ms, a <see cref="long"/>).</summary>
    public const string ReadKey = "pf.log.read";

    /// <summary>Request-context key of a live delivery: when the receiver's read before that one started (Unix ms, 0 when none).</summary>
    public const string PreviousReadStartedKey = "pf.log.previous-read-started";

    /// <summary>
    /// The event types a live view pushes: anomaly opened / acknowledged / resolved, and what moves a pump's status
    /// (alarms, delivery state, therapy phase, refills, reservoir, battery and status reports). Everything else (doses
    /// above all, most of the log) is on the pump and partition streams only.
    /// </summary>
    public static readonly IReadOnlySet<string> LiveTypes = new HashSet<string>(StringComparer.Ordinal)
    {
        "anomaly.detected", "anomaly.acknowledged", "anomaly.resolved",
        "alarm.raised", "alarm.cleared", "delivery.state", "therapy.phase", "refill", "reservoir.level", "status",
    };

    /// <summary>True for an event type carried on the live streams.</summary>
    public static bool IsLive(string type) => LiveTypes.Contains(type);

    /// <summary>The Orleans stream of an event-store stream (a pump's serial).</summary>
    public static StreamId ForStream(string streamId) => StreamId.Create(Namespace, streamId);

    /// <summary>The Orleans stream carrying every event of one log partition.</summary>
    public static StreamId ForPartition(int partition) =>
        StreamId.Create(PartitionNamespace, partition.ToString(System.Globalization.CultureInfo.InvariantCulture));

    /// <summary>Every partition stream.</summary>
    public static IEnumerable<StreamId> AllPartitions() => Enumerable.Range(0, LogPartitioning.Count).Select(ForPartition);

    /// <summary>The Orleans stream carrying the live events (<see cref="IsLive"/>) of one log partition.</summary>
    public static StreamId ForLive(int partition) =>
        StreamId.Create(LiveNamespace, partition.ToString(System.Globalization.CultureInfo.InvariantCulture));

    /// <summary>Every live stream (what a dashboard process subscribes to).</summary>
    public static IEnumerable<StreamId> AllLive() => Enumerable.Range(0, LogPartitioning.Count).Select(ForLive);
}
