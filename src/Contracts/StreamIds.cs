namespace PumpFleet.Contracts;

/// <summary>
/// Streams of the event log: a pump's stream id is its serial (the topic identifier rule of protocol.md §1, so it
/// never contains ':'); fleet-level streams use a "kind:" prefix, e.g. <c>cohort:{model}:{firmware}:{lot}</c>.
/// </summary>
public static class StreamIds
{
    /// <summary>True when <paramref name="streamId"/> is a pump's stream (not a fleet-level stream such as a cohort's).</summary>
    public static bool IsPump(string streamId) => !streamId.Contains(':', StringComparison.Ordinal);

    /// <summary>The prefix of a therapy's stream.</summary>
    public const string TherapyPrefix = "therapy:";

    /// <summary>The stream of the therapy with the pseudonymous id <paramref name="therapyId"/>.</summary>
    public static string Therapy(string therapyId) => TherapyPrefix + therapyId;

    /// <summary>True when <paramref name="streamId"/> is a therapy's stream.</summary>
    public static bool IsTherapy(string streamId) => streamId.StartsWith(TherapyPrefix, StringComparison.Ordinal);

    /// <summary>The prefix of a serial's implant-claim stream.</summary>
    public const string ImplantClaimPrefix = "implant-claim:";

    /// <summary>
    /// The stream that records which therapy a pump (by serial) was implanted in: at most one event, appended at
    /// version 1 only, so the store's uniqueness lets exactly one therapy claim a serial.
    /// </summary>
    public static string ImplantClaim(string serial) => ImplantClaimPrefix + serial;
}
