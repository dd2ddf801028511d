namespace PumpFleet.EventStore.Log;

/// <summary>A partition read that also says how far it is complete (what <see cref="LogTailCache"/> needs to share it).</summary>
public interface ILogPartitionHorizonReader
{
    /// <summary>
    /// <see cref="ILogPartitionReader.ReadPartitionAsync"/>, plus a transaction id taken before the page was read
    /// below which every transaction had ended: a page shorter than <paramref name="limit"/> holds every event of the
    /// partition after <paramref name="after"/> whose transaction id is below it, and no such event can appear later.
    /// </summary>
    Task<(GlobalPage Page, ulong Horizon)> ReadPartitionWithHorizonAsync(int partition, GlobalCheckpoint after, int limit, CancellationToken ct = default);
}
