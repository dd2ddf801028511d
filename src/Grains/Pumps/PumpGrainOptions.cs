using PumpFleet.Domain.Pumps;

namespace PumpFleet.Grains.Pumps;

/// <summary>Options of the pump grains.</summary>
public sealed class PumpGrainOptions
{
    /// <summary>Configuration section.</summary>
    public const string SectionName = "PumpFleet:Pumps";

    /// <summary>
    /// Store a snapshot after this many new events. An hourly-reporting pump writes ~50 events a day, so 200 keeps
    /// an activation's replay to a few days of events. Default: 200.
    /// </summary>
    public int SnapshotEvery { get; set; } = 200;

    /// <summary>
    /// Keep a snapshot in the stream's history (ISnapshotStore.SaveHistoricalSnapshotAsync) whenever the version crosses a multiple of this
    /// many events, besides the latest one: an as-of view then folds one kept snapshot plus at most about this many
    /// events (and any that arrived late), whatever the stream's length. About 20 days of an hourly pump's events,
    /// ~10 KB each. Default: 1000; a multiple of <see cref="SnapshotEvery"/> keeps one per interval exactly.
    /// </summary>
    public int SnapshotHistoryEvery { get; set; } = 1000;

    /// <summary>
    /// Sequence sanity (protocol.md §1): an event more than this far above the pump's highest stored seq is refused
    /// with <c>seq-out-of-range</c>. Default: 1,000,000.
    /// </summary>
    public long SeqWindow { get; set; } = IngestPlanner.DefaultSeqWindow;

    /// <summary>
    /// An activation reads its snapshot and the events after it in one statement (one round trip) instead of two
    /// queries (issue 15). A switch so that a benchmark can compare both in one run; default: true.
    /// </summary>
    public bool LoadInOneRoundTrip { get; set; } = true;
}
