namespace PumpFleet.Domain.States;

/// <summary>Whether the pump delivers (<c>Vocabulary.DeliveryStates</c>, protocol.md §1).</summary>
public enum DeliveryState
{
    Running,
    Stopped,
}

/// <summary>
/// The wire names of <see cref="DeliveryState"/>. The fold keeps the state as the device sent it (a string);
/// decisions read it through <see cref="Parse"/>.
/// </summary>
public static class DeliveryStates
{
    public const string Running = "running";
    public const string Stopped = "stopped";

    /// <summary>The wire name.</summary>
    public static string ToWire(this DeliveryState state) => state switch
    {
        DeliveryState.Running => Running,
        DeliveryState.Stopped => Stopped,
        _ => throw new ArgumentOutOfRangeException(nameof(state), state, null),
    };

    /// <summary>True when the wire name is <c>stopped</c>.</summary>
    public static bool IsStopped(string? wire) => Parse(wire) == DeliveryState.Stopped;

    /// <summary>The state a wire name stands for, or null when none or unknown.</summary>
    public static DeliveryState? Parse(string? wire) => wire switch
    {
        Running => DeliveryState.Running,
        Stopped => DeliveryState.Stopped,
        _ => null,
    };
}
