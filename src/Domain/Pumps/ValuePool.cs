using System.Collections.Concurrent;
using PumpFleet.Contracts.Events;

namespace PumpFleet.Domain.Pumps;

/// <summary>
/// One shared copy of the few distinct values a fleet's pumps keep in their state (issue 15, memory per active pump):
/// the hub id, the therapy phase and indication, the delivery state, the motor status, the drug and unit of the last
/// refill, and the device (model, firmware, lot, capacity). Each arrives in every pump's events, deserialised afresh,
/// so without the pool a million active pumps hold a million copies of "morphine" and of the same device record.
/// Values are equal either way (the pool hands back an equal instance): the fold does not change, only the copies.
/// Bounded: past <see cref="MaxEntries"/> distinct values (a fleet with unusual cardinality, or hostile input) values
/// are kept as they come, so the pool can never grow without limit.
/// </summary>
public static class ValuePool
{
    /// <summary>The most distinct strings (and, separately, devices) kept.</summary>
    public const int MaxEntries = 65_536;

    private static readonly ConcurrentDictionary<string, string> Strings = new(StringComparer.Ordinal);
    private static readonly ConcurrentDictionary<DeviceInfo, DeviceInfo> Devices = new();
    private static readonly ConcurrentDictionary<Concentration, Concentration> Concentrations = new();

    /// <summary>
    /// Off only for a same-run baseline in the memory benchmark (bench/GrainMemoryBench <c>--pool 0</c>); the platform
    /// never turns it off.
    /// </summary>
    public static bool Enabled { get; set; } = true;

    /// <summary>The shared copy of <paramref name="value"/> (or the value itself when the pool is full or off).</summary>
    public static string? Share(string? value)
    {
        if (value is null || !Enabled)
        {
            return value;
        }

        if (Strings.TryGetValue(value, out var shared))
        {
            return shared;
        }

        return Strings.Count < MaxEntries ? Strings.GetOrAdd(value, value) : value;
    }

    /// <summary>The shared copy of an equal device record, its strings shared too.</summary>
    public static DeviceInfo? Share(DeviceInfo? device)
    {
        if (device is null || !Enabled)
        {
            return device;
        }

        if (Devices.TryGetValue(device, out var shared))
        {
            return shared;
        }

        if (Devices.Count >= MaxEntries)
        {
            return device;
        }

        var pooled = device with { Model = Share(device.Model)!, Firmware = Share(device.Firmware)!, Lot = Share(device.Lot)! };
        return Devices.GetOrAdd(pooled, pooled);
    }

    /// <summary>The shared copy of an equal concentration (value and unit), its unit shared too.</summary>
    public static Concentration? Share(Concentration? concentration)
    {
        if (concentration is null || !Enabled)
        {
            return concentration;
        }

        if (Concentrations.TryGetValue(concentration, out var shared))
        {
            return shared;
        }

        if (Concentrations.Count >= MaxEntries)
        {
            return concentration;
        }

        var pooled = concentration with { Unit = Share(concentration.Unit)! };
        return Concentrations.GetOrAdd(pooled, pooled);
    }

    /// <summary>
    /// The prescription a pump keeps, with its drug, mode and concentration shared (an equal record: its seq, time,
    /// rates and schedule are the pump's own). The same instance when they are shared already.
    /// </summary>
    public static PrescriptionSet? Share(PrescriptionSet? prescription)
    {
        if (prescription is null || !Enabled)
        {
            return prescription;
        }

        var (drug, mode, concentration) = (Share(prescription.Drug)!, Share(prescription.Mode)!, Share(prescription.Concentration)!);
        return ReferenceEquals(drug, prescription.Drug) && ReferenceEquals(mode, prescription.Mode) && ReferenceEquals(concentration, prescription.Concentration)
            ? prescription
            : prescription with { Drug = drug, Mode = mode, Concentration = concentration };
    }
}
