namespace PumpFleet.Domain.Pumps;

/// <summary>
/// A <see cref="double"/>? in 8 bytes instead of 16, for the optional numbers every active pump keeps in its state,
/// ledger and detectors (issue 15, memory per active pump). "No value" is NaN: no event can carry NaN (the event JSON
/// reads numbers strictly) and a snapshot could not store one, so a NaN that arithmetic produced reads as "none"
/// rather than breaking the next snapshot. The bits are kept XOR those of NaN, so that a field's default (all zero
/// bits, as a new object has it) is "none", as <c>default(double?)</c> is. The properties keep their
/// <see cref="double"/>? type, so snapshots and views do not change.
/// </summary>
internal readonly struct OptionalDouble
{
    private static readonly long NoneBits = BitConverter.DoubleToInt64Bits(double.NaN);

    private readonly long _bits;

    private OptionalDouble(long bits) => _bits = bits;

    /// <summary>The number, or null.</summary>
    public double? Value => BitConverter.Int64BitsToDouble(_bits ^ NoneBits) is var v && double.IsNaN(v) ? null : v;

    /// <summary>Keeps <paramref name="value"/> (null and NaN as none).</summary>
    public static OptionalDouble From(double? value) =>
        value is { } v && !double.IsNaN(v) ? new(BitConverter.DoubleToInt64Bits(v) ^ NoneBits) : default;

    public static implicit operator double?(OptionalDouble number) => number.Value;

    public static implicit operator OptionalDouble(double? value) => From(value);
}
