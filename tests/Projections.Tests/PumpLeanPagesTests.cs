using Microsoft.Extensions.DependencyInjection;
using PumpFleet.Contracts.Events;
using PumpFleet.Contracts.Json;
using PumpFleet.EventStore;
using PumpFleet.ReadModels;
using PumpFleet.TestSupport;

namespace PumpFleet.Projections.Tests;

/// <summary>
/// The pumps projection's page shape (issue 14, h14q: rows read without row locks; a narrow update of the moving
/// columns for pumps whose other columns are unchanged since the worker wrote them) must leave exactly the rows of the
/// earlier shape (<c>FOR UPDATE</c>, every changed pump through the full upsert), whatever the pages' boundaries and
/// whichever worker held the pump last.
/// </summary>
public sealed class PumpLeanPagesTests(PostgresFixture pg) : ProjectionTestBase(pg)
{
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task NarrowUpdates_LeaveTheSameRows_AsTheFullUpsertWithRowLocks(bool genericPlans)
    {
        var seed = Seed();
        await seed.AppendInWavesAsync(Store, 12, () => Task.CompletedTask, Ct);
        await AppendOddEventsAsync(Store, seed.Start);
        var now = Build(ConnectionString, pageSize: 50, configure: s => s.Configure<PumpProjectionOptions>(o => o.GenericPlans = genericPlans));
        await CatchUpInStepsAsync(now.GetRequiredService<ProjectionRunner>(), Store, seed.Start);

        var other = await Pg.CreateDatabaseAsync("pumpsearlier", typeof(PumpProjection).Assembly);
        var earlier = Build(other, pageSize: 50, configure: s => s.Configure<PumpProjectionOptions>(o =>
        {
            o.LockFreeReads = false;
            o.NarrowStatusUpdates = false;
            o.GenericPlans = false;
            o.KnownRowWrites = false;
        }));
        var earlierStore = earlier.GetRequiredService<IEventStore>();
        await seed.AppendInWavesAsync(earlierStore, 12, () => Task.CompletedTask, Ct);
        await AppendOddEventsAsync(earlierStore, seed.Start);
        await CatchUpInStepsAsync(earlier.GetRequiredService<ProjectionRunner>(), earlierStore, seed.Start);

        // The narrow path was taken (here, where alarms and anomalies change the cold columns of most pages' pumps, for
        // the rest), and never by the earlier shape.
        Assert.True(Pumps(now).NarrowRowsWritten >= 10, $"narrow rows: {Pumps(now).NarrowRowsWritten}");
        Assert.Equal(0, Pumps(earlier).NarrowRowsWritten);
        Assert.Equal(await DumpAsync(other), await DumpAsync(ConnectionString));
        // The odd pump's firmware change and its alarm's raise and clear reached its row through the full upsert.
        Assert.Equal("4.3.0", await ScalarAsync<string>(ConnectionString, "SELECT firmware FROM pf_pump_status WHERE serial = 'ODD0001'"));
        Assert.Equal(0, await ScalarAsync<int>(ConnectionString, "SELECT active_alarms FROM pf_pump_status WHERE serial = 'ODD0001'"));
    }

    [Fact]
    public async Task PumpsTakenOverByAnotherWorker_AndARebuild_LeaveTheRowsOfOneWorker()
    {
        var seed = Seed(6);
        await seed.AppendInWavesAsync(Store, 24, () => Task.CompletedTask, Ct);
        await CatchUpAllAsync(Runner);
        var expected = await DumpAsync(ConnectionString);

        // Two workers (two silos' providers) take turns: each one's memory of the rows it wrote goes stale while the
        // other writes them, so neither may narrow-update from what it remembers.
        var first = Build(ConnectionString, pageSize: 40);
        var second = Build(ConnectionString, pageSize: 40);
        await Services.GetRequiredService<ProjectionRebuilder>().RebuildAsync(PumpProjection.ProjectionName, Ct);
        for (var turn = 0; !await AllCaughtUpAsync(ConnectionString); turn++)
        {
            var runner = (turn % 2 == 0 ? first : second).GetRequiredService<ProjectionRunner>();
            // A zero budget: one round, a page of each log partition, then the other worker.
            await runner.CatchUpAsync(PumpProjection.ProjectionName, 0, 1, TimeSpan.Zero, Ct);
            Assert.True(turn < 10_000, "the pumps projection did not catch up");
        }

        Assert.Equal(expected, await DumpAsync(ConnectionString));
        Assert.True(Pumps(first).NarrowRowsWritten + Pumps(second).NarrowRowsWritten > 0);
        // Each worker took pumps over from the other (their newest flow days read in the page, not remembered) and still
        // wrote flow rows without the upsert (issue 14, h14t).
        Assert.True(Pumps(first).KeyedFlowRowsWritten + Pumps(second).KeyedFlowRowsWritten > 0);
    }

    private static PumpProjection Pumps(IServiceProvider services) => services.GetServices<IProjection>().OfType<PumpProjection>().Single();

    // Catches up, appends the odd pump's later events (its cold columns change among them), catches up again: rows
    // written by one catch-up are then updated by the pages of the next, as in a running platform.
    private static async Task CatchUpInStepsAsync(ProjectionRunner runner, IEventStore store, DateTimeOffset start)
    {
        await CatchUpAllAsync(runner);
        await AppendLateEventsAsync(store, start);
        await CatchUpAllAsync(runner);
    }

    // A pump whose log has what the seed has not: a clock-suspect dose, event times out of order, an alarm raised and
    // cleared, a firmware update (cold columns changing between pages).
    private static async Task AppendOddEventsAsync(IEventStore store, DateTimeOffset start)
    {
        var device = new DeviceInfo { Model = "SM2-40", Firmware = "4.2.1", Lot = "L9999", ReservoirCapacityMl = 40 };
        var conc = new Concentration { Value = 10, Unit = "mg/mL" };
        var rows = new List<EventToAppend>
        {
            Row(new DeviceIdentified { At = start, Device = device }, null, start),
            Row(new PumpPaired { At = start, HubId = "HUB-ODD", By = "test" }, null, start),
            Row(new PrescriptionSet { Seq = 1, At = start, Drug = "morphine", Concentration = conc, Mode = "continuous", RateMlPerDay = 0.5 }, 1, start),
            Row(new RefillPerformed { Seq = 2, At = start, ExpectedResidualMl = 0, AspiratedResidualMl = 0, AddedMl = 30, Drug = "morphine", Concentration = conc }, 2, start),
            Row(Dose(3, 1), 3, start.AddHours(6), suspect: true),
            Row(Dose(4, 4), 4, start.AddHours(6)),
            Row(Dose(5, 2), 5, start.AddHours(6)),
        };
        await store.AppendAsync("ODD0001", 0, rows);
    }

    private static async Task AppendLateEventsAsync(IEventStore store, DateTimeOffset start)
    {
        var version = 0L;
        await foreach (var e in store.ReadStreamAsync("ODD0001", 0, Ct))
        {
            version = e.Version;
        }

        var device = new DeviceInfo { Model = "SM2-40", Firmware = "4.3.0", Lot = "L9999", ReservoirCapacityMl = 40 };
        var rows = new List<EventToAppend>();
        for (var seq = 6; seq < 60; seq++)
        {
            rows.Add(Row(Dose(seq, seq), seq, start.AddHours(seq)));
        }

        rows.Add(Row(new AlarmRaised { Seq = 60, At = start.AddHours(60), Code = "LOW_RESERVOIR", Severity = "non-critical" }, 60, start.AddHours(60)));
        rows.Add(Row(Dose(61, 61), 61, start.AddHours(61)));
        rows.Add(Row(new DeviceIdentified { At = start.AddHours(62), Device = device }, null, start.AddHours(62)));
        rows.Add(Row(new AlarmCleared { Seq = 62, At = start.AddHours(63), Code = "LOW_RESERVOIR" }, 62, start.AddHours(63)));
        for (var seq = 63; seq < 120; seq++)
        {
            rows.Add(Row(Dose(seq, seq + 1), seq, start.AddHours(seq + 1)));
        }

        // In three appends, so they land on different pages of the catch-up.
        foreach (var chunk in rows.Chunk(45))
        {
            await store.AppendAsync("ODD0001", version, chunk, Ct);
            version += chunk.Length;
        }
    }

    private static DoseDelivered Dose(long seq, int hour) => new()
    {
        Seq = seq, At = new DateTimeOffset(2026, 11, 1, 0, 0, 0, TimeSpan.Zero).AddHours(hour), From = new DateTimeOffset(2026, 11, 1, 0, 0, 0, TimeSpan.Zero).AddHours(hour - 1),
        VolumeMl = 0.02, Kind = "basal",
    };

    private static EventToAppend Row(PumpEvent e, long? seq, DateTimeOffset received, bool suspect = false) => new(
        Guid.NewGuid(), EventTypes.NameOf(e), EventJson.Serialize(e), seq, e is DeviceEvent d ? d.At : null, received, suspect);
}
