namespace PumpFleet.Domain.Pumps;

/// <summary>
/// A <see cref="DateTimeOffset"/>? in 16 bytes instead of 24, for the many optional times every active pump keeps
/// (issue 15, memory per active pump: about 30 of them in the state and the detectors). "No time" is
/// <c>default(DateTimeOffset)</c> (0001-01-01 UTC), which the fold already treats as "none" (PumpState.IsNewer); no event
/// time can be that instant. The properties keep their <see cref="DateTimeOffset"/>? type, so snapshots do not change.
/// </summary>
internal readonly struct OptionalTime
{
    private readonly DateTimeOffset _value;

    private OptionalTime(DateTimeOffset value) => _value = value;

    /// <summary>The time, or null.</summary>
    public DateTimeOffset? Value => _value == default ? null : _value;

    /// <summary>Keeps <paramref name="value"/> (null as none).</summary>
    public static OptionalTime From(DateTimeOffset? value) => new(value ?? default);

    public static implicit operator DateTimeOffset?(OptionalTime time) => time.Value;

    public static implicit operator OptionalTime(DateTimeOffset? value) => From(value);
}
