using System.Diagnostics;

namespace PumpFleet.Projections;

/// <summary>The stages of one page whose time <see cref="PageStageTimes"/> adds up (issue 14: where a page's time goes).</summary>
public enum PageStage
{
    /// <summary>Waiting for the page of the log: the read-ahead still running, or a read on the page's own path.</summary>
    LogWait,

    /// <summary>The checkpoint lock (the transaction's first round trip).</summary>
    Lock,

    /// <summary>The projection's <see cref="IProjection.ApplyAsync"/> as a whole (the stages below it are the projection's own, where it reports them).</summary>
    Apply,

    /// <summary>Inside the projection: reading the page's stored rows (and folds it does not hold in memory).</summary>
    StateRead,

    /// <summary>Inside the projection: deserialising, folding and building the rows' parameters.</summary>
    Fold,

    /// <summary>Inside the projection: the round trip of its batch of writes (with the checkpoint and the commit when they ride along).</summary>
    Write,

    /// <summary>The checkpoint advance and progress row, when they take a round trip of their own.</summary>
    Advance,

    /// <summary>The commit, when it takes a round trip of its own.</summary>
    Commit,
}

/// <summary>
/// Time spent per <see cref="PageStage"/>, summed over pages, and the pages counted (one instance per process, shared by
/// the runner and the projections that report their own stages). Two timestamps and an interlocked add per stage per
/// page of up to thousands of events, so it is always on; a benchmark reads it before and after a catch-up and divides
/// the difference by the pages (ProjectionBench prints it per pumps run).
/// </summary>
public sealed class PageStageTimes
{
    private readonly long[] _ticks = new long[Enum.GetValues<PageStage>().Length];
    private long _pages;

    /// <summary>Adds the time since <paramref name="startTimestamp"/> (<see cref="Stopwatch.GetTimestamp"/>) to <paramref name="stage"/> and returns now.</summary>
    public long Add(PageStage stage, long startTimestamp)
    {
        var now = Stopwatch.GetTimestamp();
        Interlocked.Add(ref _ticks[(int)stage], now - startTimestamp);
        return now;
    }

    /// <summary>Counts one committed page.</summary>
    public void Page() => Interlocked.Increment(ref _pages);

    /// <summary>The sums so far.</summary>
    public PageStageSnapshot Snapshot()
    {
        var stages = new TimeSpan[_ticks.Length];
        for (var i = 0; i < stages.Length; i++)
        {
            stages[i] = TimeSpan.FromTicks((long)(Interlocked.Read(ref _ticks[i]) * ((double)TimeSpan.TicksPerSecond / Stopwatch.Frequency)));
        }

        return new(Interlocked.Read(ref _pages), stages);
    }
}

/// <summary>The committed pages and the time per <see cref="PageStage"/> (indexed by the stage) at one moment.</summary>
/// <param name="Pages">Pages committed.</param>
/// <param name="Stages">Time summed per stage.</param>
public sealed record PageStageSnapshot(long Pages, IReadOnlyList<TimeSpan> Stages)
{
    /// <summary>What happened between <paramref name="earlier"/> and this snapshot.</summary>
    public PageStageSnapshot Since(PageStageSnapshot earlier)
    {
        ArgumentNullException.ThrowIfNull(earlier);
        return new(Pages - earlier.Pages, [.. Stages.Select((s, i) => s - earlier.Stages[i])]);
    }

    /// <summary>Milliseconds per page of each stage, e.g. <c>LogWait 1.20 · Lock 0.40 · …</c>.</summary>
    public string PerPage() =>
        string.Join(" · ", Enum.GetValues<PageStage>().Select(s =>
            string.Create(System.Globalization.CultureInfo.InvariantCulture, $"{s} {Stages[(int)s].TotalMilliseconds / Math.Max(1, Pages):F2}")));
}
