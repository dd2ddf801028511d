namespace PumpFleet.Projections;

/// <summary>Options of the projections (section <c>Projections</c>).</summary>
public sealed class ProjectionOptions
{
    /// <summary>Configuration section.</summary>
    public const string SectionName = "Projections";

    /// <summary>Run the projection grains in this silo's cluster. Default: true.</summary>
    public bool Enabled { get; set; } = true;

    /// <summary>
    /// Workers (grains) per projection, 1 to 16: worker p reads the log partitions whose number is p modulo this count,
    /// each on its own index range with its own checkpoint. Changing it needs no rebuild (checkpoints are per log
    /// partition). Default: 1.
    /// </summary>
    public int Partitions { get; set; } = 1;

    /// <summary>
    /// Events read from the log per page (one transaction per page). A page's fixed costs (the checkpoint lock, the
    /// row loads, one statement per table, the commit) are shared by its events, and a pump's events in one page cost
    /// one row write, so bigger pages catch up faster (docs/benchmarks.md: 500 → 2,000). Default: 2,000.
    /// </summary>
    public int PageSize { get; set; } = 2_000;

    /// <summary>
    /// Read ahead only where this runner's last page of the log partition was full (catching up), not after a short page
    /// (live: the partition had all it held in one page, so the next page is short too, and a short read-ahead page is
    /// read again, which doubled the live reads). False reads ahead for every partition, as before 2026-11-30 (the A/B
    /// switch of docs/benchmarks.md "Fewer, larger log reads"). Default: true.
    /// </summary>
    public bool ReadAheadOnlyWhenFull { get; set; } = true;

    /// <summary>
    /// Issue 14 (h14r), default on: the read-ahead also reads a log partition's first page (loading the stored checkpoint
    /// itself, where the runner has not committed there yet) and its short pages are used (the end of a catch-up) rather
    /// than read again; a partition whose page came short from the read-ahead is read once more before the catch-up
    /// leaves it (a short page read ahead may have stopped at the horizon held back by this runner's own open page, and
    /// that read finds what is past it). Off: as before, those pages were read on the page's own path, two of the seven
    /// pages of a partition in ProjectionBench's catch-up.
    /// </summary>
    public bool ReadAheadEveryPage { get; set; } = true;

    /// <summary>
    /// Issue 14 (h14r), default on: the checkpoint advance, the progress row and <c>COMMIT</c> are sent in one batch with
    /// the projection's last writes (<see cref="IBatchedPageProjection"/>) or, for other projections, in one batch after
    /// them: one round trip where there were two (or three). The page's writes and checkpoint still commit together or
    /// not at all (an error in the batch skips the rest of it, <c>COMMIT</c> included, and the page rolls back).
    /// Off: the advance and the commit each take their own round trip, as before.
    /// </summary>
    public bool CommitWithWrites { get; set; } = true;

    /// <summary>
    /// Issue 14 (h14r), default on: a projection that reads its page's stored rows (<see cref="IBatchedPageProjection"/>:
    /// <c>pumps</c>) sends that read in the checkpoint lock's round trip, right after the lock. Off: its own round trip
    /// after the lock, as before.
    /// </summary>
    public bool LoadWithLock { get; set; } = true;

    /// <summary>
    /// Issue 15 (h15w): at each poll, the short pages of a worker's live log partitions (its last page there was short,
    /// no failure pending) are applied together in one transaction that locks their checkpoints, checks each, applies
    /// the events of all of them (each partition's in its log order) and moves every checkpoint and progress row in one
    /// statement each; the partitions that read nothing have their stored checkpoints checked in one query. A full page
    /// (catching up), a moved checkpoint or a page the projection fails on goes the one-partition way (read-ahead,
    /// retries, parking) as before. Off: one transaction per log partition and poll, and a checkpoint lookup per idle
    /// partition (16 page transactions a second per projection at any load). Default: true.
    /// </summary>
    public bool CombineLivePartitions { get; set; } = true;

    /// <summary>
    /// Most events in one combined live page (<see cref="CombineLivePartitions"/>); the live pages of one poll beyond it
    /// make a second combined page. 1 to 100,000. Default: 10,000 (2 s of a 5,000 events/s platform).
    /// </summary>
    public int CombinedPageMaxEvents { get; set; } = 10_000;

    /// <summary>How often an idle projection looks for new events. Default: 1 s.</summary>
    public TimeSpan PollInterval { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>Longest a grain turn keeps catching up before yielding to other calls. Default: 2 s.</summary>
    public TimeSpan CatchUpBudget { get; set; } = TimeSpan.FromSeconds(2);

    /// <summary>How often every silo makes sure all projection grains are active (they survive silo loss this way). Default: 30 s.</summary>
    public TimeSpan KeepAliveInterval { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>
    /// Attempts of a page on which the projection throws before its events are applied one by one and those that still
    /// throw are parked. Default: 5.
    /// </summary>
    public int MaxAttempts { get; set; } = 5;

    /// <summary>Wait after the first failed attempt of a page; doubled after each further one, at most 1 min. Default: 1 s.</summary>
    public TimeSpan RetryBackoff { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>
    /// Whether a page's commit waits for its WAL to be flushed to disk. The read models and their checkpoint commit
    /// together, and a crash of the database can lose only a tail of whole committed pages, which the workers then
    /// read again from the log (the events themselves are committed durably by the event store), so the default does
    /// not wait (docs/projections.md, "Commit without waiting for the disk"). Default: false.
    /// </summary>
    public bool SynchronousCommit { get; set; }

    /// <summary>Fleet and lag gauges are refreshed from the database at most this often. Default: 15 s.</summary>
    public TimeSpan MetricsRefreshInterval { get; set; } = TimeSpan.FromSeconds(15);
}
