namespace PumpFleet.Domain.States;

/// <summary>Severity of an alarm the pump raised (<c>Vocabulary.AlarmSeverities</c>, protocol.md §1).</summary>
public enum AlarmSeverity
{
    NonCritical,
    Critical,
}

/// <summary>
/// The wire names of <see cref="AlarmSeverity"/>. The fold keeps an active alarm's severity as the pump sent it (a
/// string); decisions read it through <see cref="Parse"/>.
/// </summary>
public static class AlarmSeverities
{
    public const string NonCritical = "non-critical";
    public const string Critical = "critical";

    /// <summary>The wire name.</summary>
    public static string ToWire(this AlarmSeverity severity) => severity switch
    {
        AlarmSeverity.NonCritical => NonCritical,
        AlarmSeverity.Critical => Critical,
        _ => throw new ArgumentOutOfRangeException(nameof(severity), severity, null),
    };

    /// <summary>True when the wire name is <c>critical</c>.</summary>
    public static bool IsCritical(string? wire) => Parse(wire) == AlarmSeverity.Critical;

    /// <summary>The severity a wire name stands for, or null when none or unknown.</summary>
    public static AlarmSeverity? Parse(string? wire) => wire switch
    {
        NonCritical => AlarmSeverity.NonCritical,
        Critical => AlarmSeverity.Critical,
        _ => null,
    };
}
