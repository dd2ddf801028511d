using PumpFleet.Contracts.Events;
using PumpFleet.Domain.Pumps;

namespace PumpFleet.Grains.Tests;

/// <summary>Builders of realistic events for tests.</summary>
internal static class Ev
{
    public static readonly DateTimeOffset T0 = new(2026, 10, 1, 0, 0, 0, TimeSpan.Zero);

    public static readonly DeviceInfo Device20 = new() { Model = "SM2-20", Firmware = "4.2.1", Lot = "L2291", ReservoirCapacityMl = 20 };
    public static readonly DeviceInfo Device40 = new() { Model = "SM2-40", Firmware = "4.2.1", Lot = "L2291", ReservoirCapacityMl = 40 };

    public static readonly Concentration Morphine = new() { Value = 25, Unit = "mg/mL" };

    public static PrescriptionSet Continuous(long seq, DateTimeOffset at, double rate, double? lowAlarm = 4) => new()
    {
        Seq = seq, At = at, Drug = "morphine", Concentration = Morphine, Mode = "continuous", RateMlPerDay = rate, LowReservoirAlarmMl = lowAlarm,
    };

    public static RefillPerformed Refill(long seq, DateTimeOffset at, double added, double expected = 0, double aspirated = 0) => new()
    {
        Seq = seq, At = at, ExpectedResidualMl = expected, AspiratedResidualMl = aspirated, AddedMl = added, Drug = "morphine", Concentration = Morphine,
    };

    public static DoseDelivered Dose(long seq, DateTimeOffset from, DateTimeOffset at, double volume, string kind = "basal") => new()
    {
        Seq = seq, At = at, From = from, VolumeMl = volume, Kind = kind,
    };

    public static ReservoirLevelReported Level(long seq, DateTimeOffset at, double volume, string source = "measured") => new()
    {
        Seq = seq, At = at, VolumeMl = volume, Source = source,
    };

    /// <summary>Folds events with consecutive versions, as the grain does after an append.</summary>
    public static PumpState Fold(IEnumerable<PumpEvent> events, string serial = "P1", bool suspect = false)
    {
        var s = new PumpState { Serial = serial };
        var v = 0L;
        foreach (var e in events)
        {
            s.Apply(e, new EventEnvelope(++v, (e as DeviceEvent)?.Seq, e.At.AddSeconds(5), suspect));
        }

        return s;
    }
}
