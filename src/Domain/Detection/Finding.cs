namespace PumpFleet.Domain.Detection;

/// <summary>A detector's conclusion: the condition holds (with what it would say), or it is known to have cleared, or neither.</summary>
public sealed record Verdict(string Kind, Finding? Finding, bool Cleared)
{
    /// <summary>Nothing to say: keep whatever is open.</summary>
    public static Verdict None(string kind) => new(kind, null, false);

    /// <summary>The condition cleared: resolve what is open.</summary>
    public static Verdict Clear(string kind) => new(kind, null, true);

    /// <summary>The condition holds.</summary>
    public static Verdict Found(string kind, string severity, string summary, Dictionary<string, double> evidence) =>
        new(kind, new Finding(severity, summary, evidence), false);
}

/// <summary>What an anomaly says: severity, one sentence, and the numbers used.</summary>
public sealed record Finding(string Severity, string Summary, Dictionary<string, double> Evidence);
