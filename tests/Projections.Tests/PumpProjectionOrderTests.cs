using PumpFleet.Contracts.Events;
using PumpFleet.Contracts.Json;
using PumpFleet.EventStore;
using PumpFleet.ReadModels;
using PumpFleet.TestSupport;

namespace PumpFleet.Projections.Tests;

/// <summary>The pump read model folds in seq order too: a refill stored after later doses does not reset the ledger over them.</summary>
public sealed class PumpProjectionOrderTests(PostgresFixture pg) : ProjectionTestBase(pg)
{
    [Theory]
    [InlineData(20)]    // the gap is filled inside the fold window: re-folded from its checkpoint
    [InlineData(600)]   // filled after more than the window keeps: the projection replays the pump's stream
    public async Task ARefillStoredAfterLaterDoses_IsFoldedInSeqOrder(int dosesBeforeTheFill)
    {
        var serial = "ORD" + Guid.NewGuid().ToString("N")[..8];
        var t0 = new DateTimeOffset(2026, 11, 1, 0, 0, 0, TimeSpan.Zero);
        var conc = new Concentration { Value = 10, Unit = "mg/mL" };
        var events = new List<(PumpEvent Event, long? Seq)>
        {
            (new PumpPaired { At = t0, HubId = "H1", By = "test" }, null),
            (new DeviceIdentified { At = t0, Device = new DeviceInfo { Model = "SM2-40", Firmware = "4.2.1", Lot = "L1", ReservoirCapacityMl = 40 } }, null),
            (new PrescriptionSet { Seq = 1, At = t0, Drug = "morphine", Concentration = conc, Mode = "continuous", RateMlPerDay = 0.24 }, 1),
            (new RefillPerformed { Seq = 2, At = t0, ExpectedResidualMl = 0, AspiratedResidualMl = 0, AddedMl = 30, Drug = "morphine", Concentration = conc }, 2),
            (new GapRecorded { At = t0.AddHours(2), FromSeq = 3, ToSeq = 3 }, null),
        };
        for (var i = 0; i < dosesBeforeTheFill; i++)
        {
            var seq = 4 + i;
            events.Add((new DoseDelivered { Seq = seq, At = t0.AddHours(2 + i), From = t0.AddHours(1 + i), VolumeMl = 0.01, Kind = "basal" }, seq));
        }

        // Seq 3, a second refill at hour 1, arrives last: in seq order every dose above follows it.
        events.Add((new RefillPerformed { Seq = 3, At = t0.AddHours(1), ExpectedResidualMl = 30, AspiratedResidualMl = 30, AddedMl = 20, Drug = "morphine", Concentration = conc }, 3));

        var version = 0L;
        foreach (var chunk in events.Chunk(200))
        {
            var rows = chunk.Select(x => new EventToAppend(Guid.NewGuid(), EventTypes.NameOf(x.Event), EventJson.Serialize(x.Event), x.Seq,
                x.Event is DeviceEvent d ? d.At : null, t0.AddDays(30), false)).ToList();
            await Store.AppendAsync(serial, version, rows, Ct);
            version += rows.Count;
        }

        await CatchUpAllAsync(Runner);

        var reservoir = await ScalarAsync<double>(ConnectionString, $"SELECT reservoir_ml FROM pf_pump_status WHERE serial = '{serial}'");
        Assert.Equal(20 - (0.01 * dosesBeforeTheFill), reservoir, 3);
        // A state is stored from StateEvery events on (or after a replay), and never carries the fold window.
        Assert.Equal(dosesBeforeTheFill >= PumpProjection.StateEvery ? 1L : 0L,
            await ScalarAsync<long>(ConnectionString, $"SELECT count(*) FROM pf_pump_fold WHERE serial = '{serial}'"));
        Assert.False(await ScalarAsync<bool>(ConnectionString, $"SELECT coalesce(bool_or(state ? 'window'), false) FROM pf_pump_fold WHERE serial = '{serial}'"));
    }

    [Fact]
    public async Task AlarmLog_WithinOnePage_FollowsTheLogOrder()
    {
        // One page (the set-based writer groups raises): a clear closes the raises logged before it, never a raise
        // logged after it in the same page, even one with an earlier event time.
        var serial = "ALM" + Guid.NewGuid().ToString("N")[..8];
        var t0 = new DateTimeOffset(2026, 11, 1, 0, 0, 0, TimeSpan.Zero);
        PumpEvent[] events =
        [
            new DeviceIdentified { At = t0, Device = new DeviceInfo { Model = "SM2-40", Firmware = "4.2.1", Lot = "L1", ReservoirCapacityMl = 40 } },
            new AlarmRaised { Seq = 1, At = t0.AddHours(1), Code = "LOW_RESERVOIR", Severity = "non-critical" },
            new AlarmRaised { Seq = 2, At = t0.AddHours(1), Code = "MOTOR_STALL", Severity = "critical" },
            new AlarmCleared { Seq = 3, At = t0.AddHours(2), Code = "LOW_RESERVOIR" },
            new AlarmRaised { Seq = 4, At = t0.AddHours(3), Code = "LOW_RESERVOIR", Severity = "non-critical" },
            new AlarmCleared { Seq = 5, At = t0.AddHours(5), Code = "MOTOR_STALL" },
            new AlarmRaised { Seq = 6, At = t0.AddHours(4), Code = "MOTOR_STALL", Severity = "critical" },
        ];
        var rows = events.Select(e => new EventToAppend(Guid.NewGuid(), EventTypes.NameOf(e), EventJson.Serialize(e), e is DeviceEvent de ? de.Seq : (long?)null,
            e is DeviceEvent dt ? dt.At : null, t0.AddDays(1), false)).ToList();
        await Store.AppendAsync(serial, 0, rows, Ct);

        await CatchUpAllAsync(Runner);

        Assert.Equal(
            "1:2026-11-01 02:00:00+00|2:2026-11-01 05:00:00+00|4:open|6:open",
            await ScalarAsync<string>(ConnectionString, $"""
                SELECT string_agg(seq || ':' || coalesce(to_char(cleared_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS') || '+00', 'open'), '|' ORDER BY seq)
                  FROM pf_alarm_log WHERE serial = '{serial}'
                """));
    }
}
