namespace PumpFleet.EventStore.Log;

/// <summary>
/// The whole log's reading order, <c>(transaction_id, global_position)</c>, read from the partition index
/// <c>(log_partition, transaction_id, global_position)</c> alone: migration 047 dropped the whole log's index, so that
/// no partition read can be served from it (issue 15), and the readers of the whole log merge the sixteen partitions'
/// ranges instead.
/// </summary>
internal static class LogOrder
{
    /// <summary>
    /// <paramref name="branch"/> for every log partition (its number given as a SQL <c>smallint</c> literal), each in
    /// parentheses, joined by <c>UNION ALL</c>. Under an outer <c>ORDER BY</c> that each branch's own <c>ORDER BY</c>
    /// matches, PostgreSQL plans this as a Merge Append that pulls each partition's range lazily: a page of n reads
    /// n rows plus one per partition, not sixteen pages.
    /// </summary>
    public static string EveryPartition(Func<string, string> branch) =>
        string.Join("\n    UNION ALL\n    ", Enumerable.Range(0, LogPartitioning.Count).Select(p => "(" + branch(p.ToString(System.Globalization.CultureInfo.InvariantCulture) + "::smallint") + ")"));

    /// <summary>
    /// <c>log_partition = ANY(every partition)</c>: for a set of the log's rows that need no order (a count, the chain
    /// anchors' window), one scan of the partition index that walks each partition's range in turn (sixteen ranges in
    /// one index scan, or a bitmap of them), or a sequential scan where the planner finds the set too large for ranges.
    /// </summary>
    public static readonly string AnyPartition =
        $"log_partition = ANY('{{{string.Join(',', Enumerable.Range(0, LogPartitioning.Count))}}}'::smallint[])";
}
