namespace PumpFleet.Domain.Detection;

/// <summary>A detector's conclusion: the condition holds (with what it would say), or it is known to have cleared, or neither.</summary>
public sealed record Verdict(string Kind, Finding? Finding, bool Cleared)
{
    /// <summary>Nothing to say: keep whatever is open.</summary>
    public static Verdict None(string kind) => new(kind, null, false);

    /// <summary>The condition cleared: resolve what is open.</summary>
    public static Verdict Clear(string kind) => new(kind, null, true);

    /// <summary>The condition holds.</summary>
    /// <param name="kind">Anomaly kind.</param>
    /// <param name="severity">Severity.</param>
    /// <param name="summary">One sentence.</param>
    /// <param name="evidence">The numbers used.</param>
    /// <param name="evidenceAt">
    /// Event time of the data that showed the condition (the refill, the reading, the alarm), when the detector knows
    /// it; null means "the newest data" (the decision's own event time).
    /// </param>
    public static Verdict Found(string kind, string severity, string summary, Dictionary<string, double> evidence, DateTimeOffset? evidenceAt = null) =>
        new(kind, new Finding(severity, summary, evidence, evidenceAt), false);
}

/// <summary>What an anomaly says: severity, one sentence, the numbers used, and when (event time) the data showed it.</summary>
public sealed record Finding(string Severity, string Summary, Dictionary<string, double> Evidence, DateTimeOffset? EvidenceAt = null);
