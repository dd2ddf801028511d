using PumpFleet.Contracts;
using PumpFleet.Contracts.Events;
using PumpFleet.Contracts.Json;
using PumpFleet.EventStore;
using PumpFleet.TestSupport;

namespace PumpFleet.Projections.Tests;

/// <summary>The therapies projection: a therapy's rows are its fold, pumps carry their window, refills are logged; rebuilds and partitions agree.</summary>
public sealed class TherapyProjectionTests(PostgresFixture pg) : ProjectionTestBase(pg)
{
    private static readonly DateTimeOffset T0 = new(2026, 10, 1, 0, 0, 0, TimeSpan.Zero);

    // Appends a therapy's events in two appends (as two commands would): trial to the first implant, then a replacement and an explant.
    private async Task AppendTherapyAsync(string id, string first, string second, bool end)
    {
        var stream = StreamIds.Therapy(id);
        TherapyEvent[] part1 =
        [
            new TherapyOpened { At = T0, By = "dr", Indication = "spasticity" },
            new TherapyTrialRecorded { At = T0.AddDays(1), By = "dr", Kind = "multi-dose", Doses = 3 },
            new TherapyResponseRecorded { At = T0.AddDays(4), By = "dr", PainBefore = 7, PainAfter = 2 },
            new TherapyDecided { At = T0.AddDays(5), By = "dr", Proceed = true },
            new PumpImplanted { At = T0.AddDays(6), By = "dr", Serial = first },
        ];
        await Store.AppendAsync(stream, 0, Rows(part1), Ct);
        List<TherapyEvent> part2 =
        [
            new PumpExplanted { At = T0.AddDays(20), By = "dr", Serial = first, Reason = "replacement" },
            new PumpImplanted { At = T0.AddDays(20), By = "dr", Serial = second },
        ];
        if (end)
        {
            part2.Add(new PumpExplanted { At = T0.AddDays(30), By = "dr", Serial = second, Reason = "infection" });
        }

        await Store.AppendAsync(stream, part1.Length, Rows(part2), Ct);
    }

    private static EventToAppend[] Rows(IEnumerable<TherapyEvent> events) =>
        [.. events.Select(e => new EventToAppend(Guid.NewGuid(), EventTypes.NameOf(e), EventJson.Serialize(e), null, null, e.At))];

    [Fact]
    public async Task Therapy_rows_follow_the_fold_and_refills_are_logged_and_a_rebuild_gives_the_same_rows()
    {
        await Seed(4).AppendInWavesAsync(Store, 24, () => Task.CompletedTask, Ct);
        await AppendTherapyAsync("TH-1", "SN0000", "SN0001", end: true);
        await AppendTherapyAsync("TH-2", "SN0002", "SN0003", end: false);
        await CatchUpAllAsync(Runner);

        Assert.Equal("explanted", await ScalarAsync<string>(ConnectionString, "SELECT phase FROM pf_therapies WHERE id = 'TH-1'"));
        Assert.Equal("implanted", await ScalarAsync<string>(ConnectionString, "SELECT phase FROM pf_therapies WHERE id = 'TH-2'"));
        Assert.Equal("SN0003", await ScalarAsync<string>(ConnectionString, "SELECT current_serial FROM pf_therapies WHERE id = 'TH-2'"));
        Assert.Equal(T0.AddDays(6).UtcDateTime, await ScalarAsync<DateTime>(ConnectionString, "SELECT implanted_at FROM pf_therapies WHERE id = 'TH-2'"));
        Assert.Equal("replacement", await ScalarAsync<string>(ConnectionString, "SELECT explant_reason FROM pf_therapy_pumps WHERE serial = 'SN0002'"));
        Assert.Equal("TH-2", await ScalarAsync<string>(ConnectionString, "SELECT therapy_id FROM pf_therapy_pumps WHERE serial = 'SN0003'"));
        Assert.Equal(4L, await ScalarAsync<long>(ConnectionString, "SELECT count(*) FROM pf_therapy_pumps"));
        // Every seeded pump refills once at the start; the cohort stream and therapy streams add none.
        Assert.Equal(4L, await ScalarAsync<long>(ConnectionString, "SELECT count(*) FROM pf_refill_log"));
        Assert.Equal(0L, await ScalarAsync<long>(ConnectionString, "SELECT count(*) FROM pf_pump_status WHERE serial LIKE 'therapy:%'"));

        var live = await DumpAsync(ConnectionString);
        var rebuilder = Microsoft.Extensions.DependencyInjection.ServiceProviderServiceExtensions.GetRequiredService<ProjectionRebuilder>(Services);
        await rebuilder.RebuildAllAsync(Ct);
        Assert.Equal(0L, await ScalarAsync<long>(ConnectionString, "SELECT count(*) FROM pf_therapies"));
        await CatchUpAllAsync(Runner);
        Assert.Equal(live, await DumpAsync(ConnectionString));
    }
}
