using System.Text.Json;
using Microsoft.Extensions.DependencyInjection;
using PumpFleet.Contracts.Events;
using PumpFleet.Contracts.Json;
using PumpFleet.EventStore;
using PumpFleet.Projections.Tests.Seed;
using PumpFleet.ReadModels;
using PumpFleet.TestSupport;

namespace PumpFleet.Projections.Tests;

/// <summary>
/// The cohorts projection's lean pages (issue 14, h14c: only <c>at</c> read of the events it takes the time of,
/// members read by key without row locks) must leave exactly the rows of the earlier shape, which deserialised every
/// payload.
/// </summary>
public sealed class CohortLeanPagesTests(PostgresFixture pg) : ProjectionTestBase(pg)
{
    [Fact]
    public async Task LeanPages_LeaveTheSameCohortRows_AsDeserialisingEveryPayload()
    {
        var seed = Seed();
        await seed.AppendInWavesAsync(Store, 12, () => Task.CompletedTask, Ct);
        await AppendOddEventsAsync(Store, seed.Start);
        var lean = Build(ConnectionString, pageSize: 50).GetRequiredService<ProjectionRunner>();
        await CatchUpAllAsync(lean);

        var other = await Pg.CreateDatabaseAsync("cohortlegacy", typeof(PumpProjection).Assembly);
        var legacy = Build(other, pageSize: 50, configure: s => s.Configure<CohortProjectionOptions>(o => o.LeanPages = false));
        await seed.AppendInWavesAsync(legacy.GetRequiredService<IEventStore>(), 12, () => Task.CompletedTask, Ct);
        await AppendOddEventsAsync(legacy.GetRequiredService<IEventStore>(), seed.Start);
        await CatchUpAllAsync(legacy.GetRequiredService<ProjectionRunner>());

        var rows = await CohortRowsAsync(ConnectionString);
        Assert.Equal(await CohortRowsAsync(other), rows);
        // The odd pump's span: its trusted events only (the clock-suspect dose an hour before is not counted).
        Assert.Equal(
            seed.Start.AddHours(2).UtcDateTime,
            await ScalarAsync<DateTime>(ConnectionString, "SELECT first_event_at FROM pf_cohort_members WHERE serial = 'ODD0001'"));
        Assert.Equal(
            seed.Start.AddHours(5).UtcDateTime,
            await ScalarAsync<DateTime>(ConnectionString, "SELECT last_event_at FROM pf_cohort_members WHERE serial = 'ODD0001'"));
    }

    [Fact]
    public async Task Migration064_OnATableWithRows_DropsTheCohortIndex_SetsTheFillfactor_AndKeepsTheRows()
    {
        var seed = Seed(6);
        await seed.AppendInWavesAsync(Store, 72, () => Task.CompletedTask, Ct);
        await CatchUpAllAsync(Runner);
        // The table as before 064, with its rows.
        await ExecAsync(ConnectionString,
            "CREATE INDEX pf_cohort_members_cohort ON pf_cohort_members (model, firmware, lot); ALTER TABLE pf_cohort_members RESET (fillfactor)");
        var rows = await CohortRowsAsync(ConnectionString);
        var asm = typeof(CohortProjection).Assembly;
        var resource = asm.GetManifestResourceNames().Single(n => n.EndsWith(".Sql.064_cohort_members_lean.sql", StringComparison.Ordinal));
        using (var sql = new StreamReader(asm.GetManifestResourceStream(resource)!))
        {
            await ExecAsync(ConnectionString, await sql.ReadToEndAsync(Ct));
        }

        Assert.Equal(rows, await CohortRowsAsync(ConnectionString));
        Assert.Equal(0L, await ScalarAsync<long>(ConnectionString, "SELECT count(*) FROM pg_indexes WHERE indexname = 'pf_cohort_members_cohort'"));
        Assert.Equal(["fillfactor=50"], await ScalarAsync<string[]>(ConnectionString, "SELECT reloptions FROM pg_class WHERE relname = 'pf_cohort_members'"));

        // And the projection goes on with the table: 24 more hours of every pump.
        var more = new FleetSeed(6, hours: 96, start: seed.Start);
        for (var i = 0; i < 6; i++)
        {
            await more.AppendAsync(Store, i, 72, 96, Ct);
        }

        await CatchUpAllAsync(Runner);
        Assert.Equal(6L, await ScalarAsync<long>(ConnectionString, "SELECT sum(pumps) FROM pf_cohort_stats"));
        Assert.Equal(6L, await ScalarAsync<long>(ConnectionString,
            $"SELECT count(*) FROM pf_cohort_members WHERE last_event_at >= '{seed.Start.AddHours(96):O}'::timestamptz"));
    }

    [Fact]
    public void EventTime_ReadsTheTopLevelAt_AsTheSerializerDoes()
    {
        var seed = Seed(3);
        var events = Enumerable.Range(0, 3).SelectMany(i => seed.DeviceEvents(i)).Cast<PumpEvent>().Concat(seed.Anomalies(2)).ToList();
        Assert.Contains(events, e => e is DoseDelivered);
        foreach (var e in events)
        {
            var json = EventJson.Serialize(e);
            Assert.Equal(EventJson.Deserialize(EventTypes.NameOf(e), json).At, CohortProjection.EventTime(json));
        }

        // Not a nested "at", whatever the order; names as the web defaults read them (case-insensitive); offsets kept.
        Assert.Equal(
            DateTimeOffset.Parse("2026-01-02T03:04:05+02:00", System.Globalization.CultureInfo.InvariantCulture),
            CohortProjection.EventTime("""{"x":{"at":"2020-01-01T00:00:00Z"},"list":[{"at":1}],"At":"2026-01-02T03:04:05+02:00","seq":3}"""));
        // A payload longer than the stack buffer, with characters of several UTF-8 bytes.
        var padded = "{\"note\":\"" + new string('é', 2_000) + "\",\"at\":\"2026-11-30T10:00:00Z\"}";
        Assert.Equal(new DateTimeOffset(2026, 11, 30, 10, 0, 0, TimeSpan.Zero), CohortProjection.EventTime(padded));
    }

    [Theory]
    [InlineData("""{"seq":1}""")]
    [InlineData("""[1,2]""")]
    [InlineData("""{"at":"not a time"}""")]
    [InlineData("""{"seq":1,""")]
    public void EventTime_OfABadPayload_Throws(string json) =>
        Assert.ThrowsAny<Exception>(() => CohortProjection.EventTime(json));

    // A pump whose log has what the seed has not: a clock-suspect dose, event times out of order, an escaped "at".
    private static async Task AppendOddEventsAsync(IEventStore store, DateTimeOffset start)
    {
        var device = new DeviceInfo { Model = "SM2-40", Firmware = "4.2.1", Lot = "L9999", ReservoirCapacityMl = 40 };
        EventToAppend Row(PumpEvent e, long? seq, bool suspect = false, string? json = null) => new(
            Guid.NewGuid(), EventTypes.NameOf(e), json ?? EventJson.Serialize(e), seq, e is DeviceEvent d ? d.At : null, start.AddHours(6), suspect);
        DoseDelivered Dose(long seq, int hour) => new() { Seq = seq, At = start.AddHours(hour), From = start.AddHours(hour - 1), VolumeMl = 0.02, Kind = "basal" };
        await store.AppendAsync("ODD0001", 0,
        [
            Row(new DeviceIdentified { At = start, Device = device }, null),
            Row(Dose(1, 1), 1, suspect: true),
            Row(Dose(2, 4), 2),
            Row(Dose(3, 2), 3),
            // The serializer reads a property name written with an escape (\u0061 is 'a') as "at" too.
            Row(Dose(4, 5), 4, json: JsonSerializer.Serialize(Dose(4, 5), EventJson.Options).Replace("\"at\"", "\"\\u0061t\"", StringComparison.Ordinal)),
            Row(new StatusReported { Seq = 5, At = start.AddHours(3), BatteryPct = 80, Motor = "running" }, 5),
        ]);
    }

    private static async Task<string> CohortRowsAsync(string connectionString)
    {
        var members = await ScalarAsync<string>(connectionString,
            "SELECT string_agg(to_jsonb(t)::text, E'\\n' ORDER BY serial) FROM pf_cohort_members t");
        var stats = await ScalarAsync<string>(connectionString, """
            SELECT string_agg(jsonb_build_object('m', model, 'f', firmware, 'l', lot, 'pumps', pumps, 'days', round(pump_days::numeric, 9),
                   'a', alarms, 'c', critical_alarms, 'an', anomalies)::text, E'\n' ORDER BY model, firmware, lot) FROM pf_cohort_stats
            """);
        return members + "\n--\n" + stats;
    }
}
