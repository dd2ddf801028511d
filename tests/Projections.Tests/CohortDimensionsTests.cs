using PumpFleet.Contracts.Events;
using PumpFleet.Contracts.Json;
using PumpFleet.EventStore;
using PumpFleet.TestSupport;

namespace PumpFleet.Projections.Tests;

/// <summary>
/// The cohort members' surveillance dimensions (ReadModels 024): indication, phase and drug from the pump's events
/// (newest by event time, drug normalised), implant and explant dates, the first time of each failure kind.
/// </summary>
public sealed class CohortDimensionsTests(PostgresFixture pg) : ProjectionTestBase(pg)
{
    [Fact]
    public async Task Members_CarryTheirDimensions_AndALateOlderPhaseDoesNotUndoANewerOne()
    {
        var serial = "DIM" + Guid.NewGuid().ToString("N")[..8];
        var t0 = new DateTimeOffset(2026, 10, 1, 0, 0, 0, TimeSpan.Zero);
        var conc = new Concentration { Value = 500, Unit = "mcg/mL" };
        var events = new List<(PumpEvent Event, long? Seq)>
        {
            (new PumpPaired { At = t0, HubId = "H1", By = "test" }, null),
            (new DeviceIdentified { At = t0, Device = new DeviceInfo { Model = "SM2-20", Firmware = "4.3.0", Lot = "L9", ReservoirCapacityMl = 20 } }, null),
            (new TherapyPhaseChanged { Seq = 1, At = t0, Phase = "trial-continuous", Indication = "crps" }, 1),
            (new AlarmRaised { Seq = 2, At = t0.AddHours(1), Code = "CATHETER_OCCLUSION", Severity = "critical" }, 2),
            (new TherapyPhaseChanged { Seq = 3, At = t0.AddDays(2), Phase = "implanted", Indication = "spasticity" }, 3),
            (new PrescriptionSet { Seq = 4, At = t0.AddDays(2), Drug = "Lioresal Intrathecal", Concentration = conc, Mode = "continuous", RateMlPerDay = 0.5 }, 4),
            (new AlarmRaised { Seq = 5, At = t0.AddDays(5), Code = "MOTOR_STALL", Severity = "critical" }, 5),
            (new AlarmRaised { Seq = 6, At = t0.AddDays(6), Code = "MOTOR_STALL", Severity = "critical" }, 6),
            (new AnomalyDetected { At = t0.AddDays(5), AnomalyId = $"{serial}:flow-stall:9", Kind = "flow-stall", Severity = "critical", Summary = "stall", Evidence = new Dictionary<string, double>() }, null),
            (new TherapyPhaseChanged { Seq = 7, At = t0.AddDays(10), Phase = "explanted" }, 7),
            // Arrives last, but happened first: it must not move the phase back, nor the implant date.
            (new TherapyPhaseChanged { Seq = 8, At = t0.AddDays(-3), Phase = "trial-single-dose", Indication = "neuropathy" }, 8),
        };
        var rows = events.Select(x => new EventToAppend(Guid.NewGuid(), EventTypes.NameOf(x.Event), EventJson.Serialize(x.Event), x.Seq,
            x.Event is DeviceEvent d ? d.At : null, t0.AddDays(11), false)).ToList();
        await Store.AppendAsync(serial, 0, rows, Ct);

        await CatchUpAllAsync(Runner);

        string Q(string column) => $"SELECT {column} FROM pf_cohort_members WHERE serial = '{serial}'";
        Assert.Equal("explanted", await ScalarAsync<string>(ConnectionString, Q("phase")));
        Assert.Equal("spasticity", await ScalarAsync<string>(ConnectionString, Q("indication")));
        Assert.Equal("baclofen", await ScalarAsync<string>(ConnectionString, Q("drug")));
        Assert.Equal((t0.AddDays(2)).UtcDateTime, await ScalarAsync<DateTime>(ConnectionString, Q("implanted_at")));
        Assert.Equal((t0.AddDays(10)).UtcDateTime, await ScalarAsync<DateTime>(ConnectionString, Q("explanted_at")));
        // The first of each kind only (the second MOTOR_STALL changes nothing).
        Assert.Equal((t0.AddDays(5)).UtcDateTime, await ScalarAsync<DateTime>(ConnectionString, Q("(first_failures ->> 'alarm:MOTOR_STALL')::timestamptz")));
        Assert.Equal((t0.AddHours(1)).UtcDateTime, await ScalarAsync<DateTime>(ConnectionString, Q("(first_failures ->> 'alarm:CATHETER_OCCLUSION')::timestamptz")));
        Assert.Equal((t0.AddDays(5)).UtcDateTime, await ScalarAsync<DateTime>(ConnectionString, Q("(first_failures ->> 'anomaly:flow-stall')::timestamptz")));
        Assert.Equal(3L, await ScalarAsync<long>(ConnectionString, Q("(SELECT count(*) FROM jsonb_object_keys(first_failures))")));
    }
}
