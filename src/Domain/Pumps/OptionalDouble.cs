namespace PumpFleet.Domain.Pumps;

/// <summary>
/// A <see cref="double"/>? in 8 bytes instead of 16, for the optional numbers every active pump keeps in its state,
/// ledger and detectors (issue 15, memory per active pump). "No value" is NaN: no event can carry NaN (the event JSON
/// reads numbers strictly) and a snapshot could not store one, so a NaN that arithmetic produced reads as "none"
/// rather than breaking the next snapshot. The properties keep their <see cref="double"/>? type, so snapshots and
/// views do not change.
/// </summary>
internal readonly struct OptionalDouble
{
    private readonly double _value;

    private OptionalDouble(double value) => _value = value;

    /// <summary>The number, or null.</summary>
    public double? Value => double.IsNaN(_value) ? null : _value;

    /// <summary>Keeps <paramref name="value"/> (null as none).</summary>
    public static OptionalDouble From(double? value) => new(value ?? double.NaN);

    public static implicit operator double?(OptionalDouble number) => number.Value;

    public static implicit operator OptionalDouble(double? value) => From(value);
}
