namespace PumpFleet.Domain.States;

/// <summary>A pump's therapy phase (<c>Vocabulary.Phases</c>, protocol.md §1).</summary>
public enum TherapyPhase
{
    TrialSingleDose,
    TrialMultiDose,
    TrialContinuous,
    Implanted,
    Explanted,
}

/// <summary>
/// The wire names of <see cref="TherapyPhase"/>. The fold keeps the phase as the device sent it (a string), so a value
/// outside the vocabulary still round-trips unchanged; decisions read it through <see cref="Parse"/>.
/// </summary>
public static class TherapyPhases
{
    public const string TrialSingleDose = "trial-single-dose";
    public const string TrialMultiDose = "trial-multi-dose";
    public const string TrialContinuous = "trial-continuous";
    public const string Implanted = "implanted";
    public const string Explanted = "explanted";

    /// <summary>The wire name.</summary>
    public static string ToWire(this TherapyPhase phase) => phase switch
    {
        TherapyPhase.TrialSingleDose => TrialSingleDose,
        TherapyPhase.TrialMultiDose => TrialMultiDose,
        TherapyPhase.TrialContinuous => TrialContinuous,
        TherapyPhase.Implanted => Implanted,
        TherapyPhase.Explanted => Explanted,
        _ => throw new ArgumentOutOfRangeException(nameof(phase), phase, null),
    };

    /// <summary>True when the wire name is <c>explanted</c>.</summary>
    public static bool IsExplanted(string? wire) => Parse(wire) == TherapyPhase.Explanted;

    /// <summary>The phase a wire name stands for, or null when none or unknown.</summary>
    public static TherapyPhase? Parse(string? wire) => wire switch
    {
        TrialSingleDose => TherapyPhase.TrialSingleDose,
        TrialMultiDose => TherapyPhase.TrialMultiDose,
        TrialContinuous => TherapyPhase.TrialContinuous,
        Implanted => TherapyPhase.Implanted,
        Explanted => TherapyPhase.Explanted,
        _ => null,
    };
}
