using Microsoft.Extensions.DependencyInjection;
using PumpFleet.Contracts.Events;
using PumpFleet.Contracts.Json;
using PumpFleet.EventStore;
using PumpFleet.ReadModels;
using PumpFleet.TestSupport;

namespace PumpFleet.Projections.Tests;

/// <summary>
/// The pumps projection keeps its folded state in <c>pf_pump_fold</c> (migration 027), apart from the status row the
/// API reads: a worker that does not hold a pump in memory continues from there, and the result is the same as one
/// worker that held everything in memory.
/// </summary>
public sealed class PumpFoldTests(PostgresFixture pg) : ProjectionTestBase(pg)
{
    [Fact]
    public async Task AFreshWorkerPerWave_ContinuesFromTheStoredFold_AndEndsWhereOneWorkerEnds()
    {
        var seed = Seed(6);
        // Each wave is applied by a new runner (a new silo, an empty cache): every page loads its pumps' state from
        // pf_pump_fold and folds the events after state_version from the log.
        await seed.AppendInWavesAsync(Store, 12, () => CatchUpAllAsync(Build(ConnectionString).GetRequiredService<ProjectionRunner>()), Ct);
        var fresh = await DumpAsync(ConnectionString);

        // The same log from zero by one runner that keeps every pump in memory.
        var rebuilder = Services.GetRequiredService<ProjectionRebuilder>();
        await rebuilder.RebuildAsync(PumpProjection.ProjectionName, Ct);
        Assert.Equal(0L, await ScalarAsync<long>(ConnectionString, "SELECT count(*) FROM pf_pump_fold"));
        await CatchUpAllAsync(Runner);
        Assert.Equal(fresh, await DumpAsync(ConnectionString));

        // At most one stored state per pump, never ahead of the row and less than StateEvery events behind it (a pump
        // without one counts from version 0); the status row carries no state.
        Assert.InRange(await ScalarAsync<long>(ConnectionString, "SELECT count(*) FROM pf_pump_fold"), 0L, 6L);
        Assert.Equal(0L, await ScalarAsync<long>(ConnectionString,
            $"SELECT count(*) FROM pf_pump_status s LEFT JOIN pf_pump_fold f USING (serial) WHERE f.state_version > s.version OR s.version - coalesce(f.state_version, 0) >= {PumpProjection.StateEvery}"));
        Assert.Equal(0L, await ScalarAsync<long>(ConnectionString,
            "SELECT count(*) FROM information_schema.columns WHERE table_name = 'pf_pump_status' AND column_name IN ('state', 'state_version')"));
    }

    [Fact]
    public async Task APumpStoresNoStateBeforeStateEveryEvents_AndAFreshWorkerFoldsItsFirstEventsFromTheLog()
    {
        var serial = "FOLD" + Guid.NewGuid().ToString("N")[..8];
        var t0 = new DateTimeOffset(2026, 11, 1, 0, 0, 0, TimeSpan.Zero);
        var conc = new Concentration { Value = 10, Unit = "mg/mL" };
        var version = await AppendAsync(serial, 0,
        [
            (new DeviceIdentified { At = t0, Device = new DeviceInfo { Model = "SM2-40", Firmware = "4.2.1", Lot = "L1", ReservoirCapacityMl = 40 } }, null),
            (new PrescriptionSet { Seq = 1, At = t0, Drug = "morphine", Concentration = conc, Mode = "continuous", RateMlPerDay = 0.24 }, 1),
            (new RefillPerformed { Seq = 2, At = t0, ExpectedResidualMl = 0, AspiratedResidualMl = 0, AddedMl = 30, Drug = "morphine", Concentration = conc }, 2),
        ]);
        version = await AppendAsync(serial, version, Doses(t0, 3, 40));
        await CatchUpAllAsync(Runner);
        Assert.Equal(0L, await ScalarAsync<long>(ConnectionString, $"SELECT count(*) FROM pf_pump_fold WHERE serial = '{serial}'"));

        // A worker without the pump in memory and no stored state folds its events from version 0 on, from the log.
        version = await AppendAsync(serial, version, Doses(t0, 43, 30));
        await CatchUpAllAsync(Build(ConnectionString).GetRequiredService<ProjectionRunner>());
        Assert.Equal(version, await ScalarAsync<long>(ConnectionString, $"SELECT version FROM pf_pump_status WHERE serial = '{serial}'"));
        Assert.Equal(0L, await ScalarAsync<long>(ConnectionString, $"SELECT count(*) FROM pf_pump_fold WHERE serial = '{serial}'"));

        // Past StateEvery events the state is stored, and a fresh worker continues from it.
        version = await AppendAsync(serial, version, Doses(t0, 73, PumpProjection.StateEvery));
        await CatchUpAllAsync(Build(ConnectionString).GetRequiredService<ProjectionRunner>());
        Assert.InRange(await ScalarAsync<long>(ConnectionString, $"SELECT state_version FROM pf_pump_fold WHERE serial = '{serial}'"),
            PumpProjection.StateEvery, version);
        version = await AppendAsync(serial, version, Doses(t0, 73 + PumpProjection.StateEvery, 5));
        await CatchUpAllAsync(Build(ConnectionString).GetRequiredService<ProjectionRunner>());
        var fresh = await DumpAsync(ConnectionString);

        // The same as one worker that folded everything in memory.
        await Services.GetRequiredService<ProjectionRebuilder>().RebuildAsync(PumpProjection.ProjectionName, Ct);
        await CatchUpAllAsync(Runner);
        Assert.Equal(fresh, await DumpAsync(ConnectionString));
        Assert.Equal(version, await ScalarAsync<long>(ConnectionString, $"SELECT version FROM pf_pump_status WHERE serial = '{serial}'"));

        static List<(PumpEvent Event, long? Seq)> Doses(DateTimeOffset t0, int firstSeq, int count) =>
            [.. Enumerable.Range(firstSeq, count).Select(seq => ((PumpEvent)new DoseDelivered
            {
                Seq = seq, At = t0.AddHours(seq), From = t0.AddHours(seq - 1), VolumeMl = 0.01, Kind = "basal",
            }, (long?)seq))];
    }

    private async Task<long> AppendAsync(string serial, long version, List<(PumpEvent Event, long? Seq)> events)
    {
        var rows = events.Select(x => new EventToAppend(Guid.NewGuid(), EventTypes.NameOf(x.Event), EventJson.Serialize(x.Event), x.Seq,
            x.Event is DeviceEvent d ? d.At : null, x.Event.At, false)).ToList();
        await Store.AppendAsync(serial, version, rows, Ct);
        return version + rows.Count;
    }
}
