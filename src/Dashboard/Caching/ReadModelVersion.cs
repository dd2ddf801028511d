using PumpFleet.ReadModels;

namespace PumpFleet.Dashboard.Caching;

/// <summary>
/// A read-model version as one query saw it: the version string and when that query started (a
/// <see cref="TimeProvider"/> timestamp), numbered in the order the reads started.
/// </summary>
/// <param name="Version">The read models' version (<see cref="IReadModelQueries.VersionAsync"/>).</param>
/// <param name="Sequence">Order of the reads of this process: a larger number started later.</param>
/// <param name="StartedAt">Timestamp (<see cref="TimeProvider.GetTimestamp"/>) taken just before the read was sent.</param>
public sealed record ObservedVersion(string Version, long Sequence, long StartedAt);

/// <summary>
/// The read models' version as this process last read it, shared by the live channel and every API read. A caller
/// says how old a reading it accepts; only when the last one is older is the version read again, once for all the
/// callers waiting at that moment (one small query, whatever the number of browsers). The live channel asks for a
/// fresh reading before it pushes a change, so a page that re-reads on that push is answered at that version or a
/// later one, never an earlier one.
/// </summary>
public sealed class ReadModelVersion(IReadModelQueries queries, TimeProvider time, ReadCacheMetrics metrics)
{
    private readonly SemaphoreSlim _gate = new(1, 1);
    private ObservedVersion? _latest;
    private long _sequence;

    /// <summary>The last reading, or null before the first.</summary>
    public ObservedVersion? Latest => Volatile.Read(ref _latest);

    /// <summary>
    /// A reading that started no earlier than <paramref name="maxAge"/> before this call (zero: one that started
    /// after this call). Readings are made one at a time, so they are published in the order they started.
    /// </summary>
    public async Task<ObservedVersion> CurrentAsync(TimeSpan maxAge, CancellationToken ct)
    {
        var arrived = time.GetTimestamp();
        if (FreshFor(Latest, arrived, maxAge) is { } fresh)
        {
            return fresh;
        }

        await _gate.WaitAsync(ct);
        try
        {
            // Someone else may have read it while this call waited for the gate: that reading started after this
            // call arrived, which is as fresh as one this call would make.
            if (FreshFor(Latest, arrived, maxAge) is { } meanwhile)
            {
                return meanwhile;
            }

            var started = time.GetTimestamp();
            var version = await queries.VersionAsync(ct);
            metrics.VersionRead();
            var observed = new ObservedVersion(version, ++_sequence, started);
            Volatile.Write(ref _latest, observed);
            return observed;
        }
        finally
        {
            _gate.Release();
        }
    }

    private ObservedVersion? FreshFor(ObservedVersion? latest, long arrived, TimeSpan maxAge)
    {
        if (latest is null)
        {
            return null;
        }

        // Started at or after the call arrived, or at most maxAge before it.
        return latest.StartedAt >= arrived || time.GetElapsedTime(latest.StartedAt, arrived) <= maxAge ? latest : null;
    }
}
