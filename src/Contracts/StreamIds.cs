namespace PumpFleet.Contracts;

/// <summary>
/// Streams of the event log: a pump's stream id is its serial (the topic identifier rule of protocol.md §1, so it
/// never contains ':'); fleet-level streams use a "kind:" prefix, e.g. <c>cohort:{model}:{firmware}:{lot}</c>.
/// </summary>
public static class StreamIds
{
    /// <summary>True when <paramref name="streamId"/> is a pump's stream (not a fleet-level stream such as a cohort's).</summary>
    public static bool IsPump(string streamId) => !streamId.Contains(':', StringComparison.Ordinal);
}
