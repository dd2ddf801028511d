namespace PumpFleet.Domain.States;

/// <summary>Severity of a platform anomaly (<c>Vocabulary.AnomalySeverities</c>), in rank order: info &lt; warning &lt; critical.</summary>
public enum AnomalySeverity
{
    Info,
    Warning,
    Critical,
}

/// <summary>The wire names of <see cref="AnomalySeverity"/>.</summary>
public static class AnomalySeverities
{
    public const string Info = "info";
    public const string Warning = "warning";
    public const string Critical = "critical";

    /// <summary>The wire name.</summary>
    public static string ToWire(this AnomalySeverity severity) => severity switch
    {
        AnomalySeverity.Info => Info,
        AnomalySeverity.Warning => Warning,
        AnomalySeverity.Critical => Critical,
        _ => throw new ArgumentOutOfRangeException(nameof(severity), severity, null),
    };

    /// <summary>The severity a wire name stands for; anything unknown ranks lowest, as <see cref="AnomalySeverity.Info"/>.</summary>
    public static AnomalySeverity Parse(string? wire) => wire switch
    {
        Critical => AnomalySeverity.Critical,
        Warning => AnomalySeverity.Warning,
        _ => AnomalySeverity.Info,
    };
}
