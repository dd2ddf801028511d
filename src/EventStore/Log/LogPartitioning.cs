using System.Text;

namespace PumpFleet.EventStore.Log;

/// <summary>
/// The partitions of the event log (migration 007): every event row carries <c>log_partition</c>, computed at INSERT
/// by <c>pf_log_partition(stream_id)</c>. <see cref="PartitionOf"/> is the same function in C#, so a stream's events
/// and the stream provider's queue for that stream always agree.
/// </summary>
public static class LogPartitioning
{
    /// <summary>How many partitions the schema has (the modulus in <c>pf_log_partition</c>).</summary>
    public const int Count = 16;

    /// <summary>FNV-1a (32 bit) over the UTF-8 bytes of the stream id, modulo <see cref="Count"/>: what migration 007 stores.</summary>
    public static int PartitionOf(string streamId)
    {
        ArgumentNullException.ThrowIfNull(streamId);
        var hash = 2166136261u;
        foreach (var b in Encoding.UTF8.GetBytes(streamId))
        {
            hash = unchecked((hash ^ b) * 16777619u);
        }

        return (int)(hash % Count);
    }
}
