using System.Diagnostics;

namespace PumpFleet.EventStoreComparison;

/// <summary>
/// Counts database round trips by listening to Npgsql's own activity source: Npgsql starts one activity per command or
/// batch it sends (and one per physical connection open), so the count for one append is its number of round trips.
/// </summary>
public sealed class RoundTrips : IDisposable
{
    private readonly ActivityListener _listener;
    private long _count;

    /// <summary>Starts listening.</summary>
    public RoundTrips()
    {
        _listener = new ActivityListener
        {
            ShouldListenTo = s => s.Name == "Npgsql",
            Sample = (ref ActivityCreationOptions<ActivityContext> _) => ActivitySamplingResult.AllData,
            ActivityStarted = a =>
            {
                if (Enabled)
                {
                    Interlocked.Increment(ref _count);
                }
            },
        };
        ActivitySource.AddActivityListener(_listener);
    }

    /// <summary>Count only while true.</summary>
    public bool Enabled { get; set; }

    /// <summary>Round trips counted so far; resets the counter.</summary>
    public long Take() => Interlocked.Exchange(ref _count, 0);

    /// <inheritdoc />
    public void Dispose() => _listener.Dispose();
}
