namespace PumpFleet.Streaming;

/// <summary>
/// The log provider's retry waits: doubling from a first delay to a maximum, each drawn from the top fifth below it,
/// so that sixteen pulling agents failing together against the same database do not all retry in step.
/// </summary>
internal static class JitteredBackoff
{
    /// <summary>The wait before retry number <paramref name="attempt"/> (0 for the first).</summary>
    public static TimeSpan Next(int attempt, TimeSpan first, TimeSpan max, Random random)
    {
        var ticks = first.Ticks * Math.Pow(2, Math.Clamp(attempt, 0, 30));
        var delay = Math.Min(ticks, max.Ticks);
        return TimeSpan.FromTicks((long)(delay * (0.8 + (0.2 * random.NextDouble()))));
    }
}
