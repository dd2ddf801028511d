using System.Text;
using PumpFleet.EventStore.Log;

namespace PumpFleet.Projections;

/// <summary>Stable assignment of pumps to projection partitions.</summary>
public static class Partitioning
{
    /// <summary>
    /// FNV-1a over the serial's UTF-8 bytes, modulo <paramref name="count"/>. string.GetHashCode is randomised per
    /// process, so it would send a pump to different partitions on different silos.
    /// </summary>
    public static int PartitionOf(string serial, int count)
    {
        ArgumentNullException.ThrowIfNull(serial);
        if (count <= 1)
        {
            return 0;
        }

        var hash = 2166136261u;
        foreach (var b in Encoding.UTF8.GetBytes(serial))
        {
            hash = unchecked((hash ^ b) * 16777619u);
        }

        return (int)(hash % (uint)count);
    }

    /// <summary>The checkpoint name of one partition of a projection.</summary>
    public static string CheckpointName(string projection, int partition, int count) => $"projection:{projection}:{partition}of{count}";

    /// <summary>
    /// The checkpoint of a projection in one log partition (migration 007). Checkpoints are per log partition, not per
    /// projection partition, so changing <see cref="ProjectionOptions.Partitions"/> moves whole log partitions between
    /// workers and needs no rebuild.
    /// </summary>
    public static string CheckpointName(string projection, int logPartition) => CheckpointName(projection, logPartition, LogPartitioning.Count);

    /// <summary>
    /// The log partitions that projection partition <paramref name="partition"/> of <paramref name="count"/> reads: those
    /// whose number is <paramref name="partition"/> modulo <paramref name="count"/> (so <paramref name="count"/> is at most
    /// <see cref="LogPartitioning.Count"/>).
    /// </summary>
    public static IEnumerable<int> LogPartitionsOf(int partition, int count)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(count, 1);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(count, LogPartitioning.Count);
        ArgumentOutOfRangeException.ThrowIfNegative(partition);
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(partition, count);
        for (var q = partition; q < LogPartitioning.Count; q += count)
        {
            yield return q;
        }
    }

    /// <summary>The grain key of one partition of a projection.</summary>
    public static string GrainKey(string projection, int partition, int count) => $"{projection}/{partition}/{count}";

    /// <summary>Parses <see cref="GrainKey"/>.</summary>
    public static (string Projection, int Partition, int Count) ParseGrainKey(string key)
    {
        ArgumentNullException.ThrowIfNull(key);
        var parts = key.Split('/');
        if (parts.Length != 3 || !int.TryParse(parts[1], System.Globalization.CultureInfo.InvariantCulture, out var p)
            || !int.TryParse(parts[2], System.Globalization.CultureInfo.InvariantCulture, out var n) || p < 0 || n < 1 || p >= n)
        {
            throw new FormatException($"'{key}' is not a projection grain key (name/partition/count).");
        }

        return (parts[0], p, n);
    }
}
