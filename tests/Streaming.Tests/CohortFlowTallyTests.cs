using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using Microsoft.Extensions.Time.Testing;
using Npgsql;
using PumpFleet.Contracts.Events;
using PumpFleet.Contracts.Json;
using PumpFleet.Domain.Detection;
using PumpFleet.Domain.Detection.CohortFlow;
using PumpFleet.EventStore;
using PumpFleet.ReadModels;
using PumpFleet.TestSupport;

namespace PumpFleet.Streaming.Tests;

/// <summary>
/// The cohort flow early warning fed by the log stream: the flow tally grains keep each pump's last complete
/// refill-cycle flow factor from the partition streams, equal to a SQL recount of <c>pf_events</c>, and the job warns
/// the deviating lot from them without a sample in <c>pf_pump_status</c>.
/// </summary>
public sealed class CohortFlowTallyTests(PostgresFixture pg)
{
    private static readonly DateTimeOffset T0 = new(2026, 9, 1, 0, 0, 0, TimeSpan.Zero);
    private static readonly Concentration Morphine = new() { Value = 10, Unit = "mg/mL" };

    [Fact]
    public async Task ALotOverInfusing_IsWarnedFromStreamSamples_ThatEqualARecountOfTheLog()
    {
        var ct = TestContext.Current.CancellationToken;
        var cs = await StreamCluster.CreateDatabaseAsync(pg, "cf");
        await using var ds = NpgsqlDataSource.Create(cs);
        var store = new NpgsqlEventStore(ds);
        await using var cluster = await StreamCluster.StartAsync(cs, silos: 2);

        // Three lots of eight healthy pumps (factors within ±1 %) and lot F of twelve pumps at +20 %: 0.5 mL/day for 30
        // days between two refills, the second one's aspirated residual short by what the deviation took. One pump of A
        // has a single refill only (no complete cycle: no sample), one of B a third refill whose cycle is under 0.1 mL.
        var model = "SM2-" + Guid.NewGuid().ToString("N")[..6].ToUpperInvariant();
        foreach (var (lot, count) in new[] { ("A", 8), ("B", 8), ("C", 8), ("F", 12) })
        {
            for (var i = 0; i < count; i++)
            {
                var factor = lot == "F" ? 1.2 : 1 + ((i % 5) - 2) * 0.005;
                long seq = 0;
                var events = new List<PumpEvent>
                {
                    new DeviceIdentified { At = T0, Device = new DeviceInfo { Model = model, Firmware = "4.2.1", Lot = lot, ReservoirCapacityMl = 20 } },
                    new RefillPerformed { Seq = ++seq, At = T0, ExpectedResidualMl = 0, AspiratedResidualMl = 0, AddedMl = 20, Drug = "morphine", Concentration = Morphine },
                };
                for (var d = 1; d <= 30; d++)
                {
                    events.Add(new DoseDelivered { Seq = ++seq, At = T0.AddDays(d), From = T0.AddDays(d - 1), VolumeMl = 0.5, Kind = "basal" });
                }

                if (!(lot == "A" && i == 0))
                {
                    events.Add(new RefillPerformed
                    {
                        Seq = ++seq, At = T0.AddDays(30), ExpectedResidualMl = 5, AspiratedResidualMl = Math.Round(5 - (15 * (factor - 1)), 4), AddedMl = 15, Drug = "morphine", Concentration = Morphine,
                    });
                }

                if (lot == "B" && i == 0)
                {
                    events.Add(new RefillPerformed { Seq = ++seq, At = T0.AddDays(30.5), ExpectedResidualMl = 20, AspiratedResidualMl = 20, AddedMl = 0, Drug = "morphine", Concentration = Morphine });
                }

                await AppendAsync(store, StreamCluster.NewStreamId("CF" + lot + i), events);
            }
        }

        // The stream's samples reach exactly what a recount of the log says.
        var expected = await RecountAsync(ds, ct);
        Assert.Equal(8 + 8 + 8 + 12 - 2, expected.Count);
        await Eventually.TrueAsync(async () => Same(await CohortFlowJob.FromTalliesAsync(cluster.Client, T0.AddYears(-1)), expected), TimeSpan.FromSeconds(90),
            "the flow tally grains' samples equal a recount of pf_events");

        // The job tests those samples: pf_pump_status holds none (no projection runs here), so the warning comes from the grains.
        var job = new CohortFlowJob(ds, cluster.Client, Options.Create(new AnomalyDetectionOptions()), new FakeTimeProvider(T0.AddDays(40)),
            new ConfigurationBuilder().Build(), NullLogger<CohortFlowJob>.Instance);
        var opened = Assert.IsType<AnomalyDetected>(Assert.Single(await job.RunOnceAsync(ct)));
        Assert.Equal(AnomalyKinds.CohortFlowDeviation, opened.Kind);
        Assert.StartsWith("cohort-flow:lot:F:", opened.AnomalyId, StringComparison.Ordinal);
        Assert.Equal(1.2, opened.Evidence["factor"], 4);
        Assert.Equal(12, opened.Evidence["pumps"]);

        // The same statistics as the table path: Evaluate over the recount finds the same single cohort.
        var fromRecount = CohortFlowDeviation.Evaluate(expected, new AnomalyDetectionOptions(), T0.AddDays(40)).Where(r => r.Signals).Select(r => r.Cohort.ToString());
        Assert.Equal(["lot F"], fromRecount);

        // Saved: every test pump's row in pf_cohort_flow at its stream's last version (after the next flush).
        await Eventually.TrueAsync(async () =>
        {
            await using var cmd = ds.CreateCommand("""
                SELECT count(*) FROM (SELECT stream_id, max(version) v FROM pf_events WHERE stream_id NOT LIKE '%:%' GROUP BY stream_id) e
                  JOIN pf_cohort_flow t ON t.serial = e.stream_id AND t.version = e.v
                """);
            return (long)(await cmd.ExecuteScalarAsync(ct))! == 36;
        }, TimeSpan.FromSeconds(30), "all 36 pumps saved at their last version");
    }

    [Fact]
    public void Tally_DropsRedeliveries_RefusesHoles_AndTakesTheLastCycle()
    {
        var tally = new CohortFlowTally();
        var id = EventJson.Serialize(new DeviceIdentified { At = T0, Device = new DeviceInfo { Model = "M", Firmware = "1", Lot = "L", ReservoirCapacityMl = 20 } });
        string Refill(double expected, double aspirated) =>
            EventJson.Serialize(new RefillPerformed { Seq = 1, At = T0.AddDays(10), ExpectedResidualMl = expected, AspiratedResidualMl = aspirated, AddedMl = 10, Drug = "morphine", Concentration = Morphine });
        var dose = EventJson.Serialize(new DoseDelivered { Seq = 2, At = T0.AddDays(1), From = T0, VolumeMl = 5, Kind = "basal" });

        Assert.Equal(TallyOutcome.Applied, tally.Apply("P1", 1, "device.identified", id, false));
        Assert.Equal(TallyOutcome.Applied, tally.Apply("P1", 2, "refill", Refill(0, 0), false));
        Assert.Null(tally.Member("P1")!.Sample);   // the first refill closes no known cycle
        Assert.Equal(TallyOutcome.Gap, tally.Apply("P1", 4, "dose.delivered", dose, false));
        Assert.Equal(TallyOutcome.Applied, tally.Apply("P1", 3, "dose.delivered", dose, false));
        Assert.Equal(TallyOutcome.Duplicate, tally.Apply("P1", 3, "dose.delivered", dose, false));
        Assert.Equal(TallyOutcome.Applied, tally.Apply("P1", 4, "some.future.type", "not json", false));
        Assert.Equal(TallyOutcome.Applied, tally.Apply("P1", 5, "refill", Refill(5, 4), false));
        var sample = tally.Member("P1")!.Sample!;
        Assert.Equal(1.2, sample.Factor, 9);
        Assert.Equal(5, sample.CycleMl);
        Assert.Equal("L", sample.Lot);

        // A refill right after another closes a cycle too small to say anything: the sample goes, as in the pump projection.
        Assert.Equal(TallyOutcome.Applied, tally.Apply("P1", 6, "refill", Refill(10, 10), false));
        Assert.Null(tally.Member("P1")!.Sample);
        Assert.Equal(TallyOutcome.NotAPump, tally.Apply("cohort-flow:lot:L", 1, "refill", Refill(0, 0), false));
        Assert.Single(tally.TakeChanged());
        Assert.Empty(tally.TakeChanged());
    }

    private static async Task AppendAsync(NpgsqlEventStore store, string serial, List<PumpEvent> events)
    {
        var rows = events.Select(e => new EventToAppend(Guid.NewGuid(), EventTypes.NameOf(e), EventJson.Serialize(e),
            e is DeviceEvent d ? d.Seq : null, e is DeviceEvent dt ? dt.At : null, T0.AddDays(31), false)).ToList();
        await store.AppendAsync(serial, 0, rows, TestContext.Current.CancellationToken);
    }

    // A recount written independently of the tally: SQL over the whole log. Per pump its last two refills by version,
    // the motor volume of the doses between them, and 1 + (expected − aspirated) / that volume; no sample when the pump
    // has one refill, or when the volume is under 0.1 mL.
    private static async Task<List<RefillFlowSample>> RecountAsync(NpgsqlDataSource ds, CancellationToken ct)
    {
        await using var cmd = ds.CreateCommand("""
            WITH id AS (
                SELECT DISTINCT ON (stream_id) stream_id, data->'device'->>'model' AS model, data->'device'->>'firmware' AS firmware,
                       data->'device'->>'lot' AS lot
                  FROM pf_events WHERE event_type = 'device.identified' ORDER BY stream_id, version DESC),
            r AS (
                SELECT stream_id, version, device_time, (data->>'expectedResidualMl')::float8 AS expected,
                       (data->>'aspiratedResidualMl')::float8 AS aspirated,
                       row_number() OVER (PARTITION BY stream_id ORDER BY version DESC) AS k
                  FROM pf_events WHERE event_type = 'refill' AND stream_id NOT LIKE '%:%'),
            c AS (
                SELECT l.stream_id, l.device_time AS at, l.expected - l.aspirated AS discrepancy,
                       (SELECT coalesce(sum((d.data->>'volumeMl')::float8), 0) FROM pf_events d
                         WHERE d.stream_id = l.stream_id AND d.event_type = 'dose.delivered' AND d.version > p.version AND d.version < l.version) AS cycle
                  FROM r l JOIN r p ON p.stream_id = l.stream_id AND p.k = 2 WHERE l.k = 1)
            SELECT c.stream_id, id.model, id.firmware, id.lot, c.at, greatest(0, 1 + c.discrepancy / c.cycle), c.cycle
              FROM c JOIN id USING (stream_id) WHERE c.cycle >= 0.1 ORDER BY c.stream_id
            """);
        var result = new List<RefillFlowSample>();
        await using var rd = await cmd.ExecuteReaderAsync(ct);
        while (await rd.ReadAsync(ct))
        {
            result.Add(new RefillFlowSample(rd.GetString(0), rd.GetString(1), rd.GetString(2), rd.GetString(3), rd.GetFieldValue<DateTimeOffset>(4),
                rd.GetDouble(5), rd.GetDouble(6)));
        }

        return result;
    }

    private static bool Same(List<RefillFlowSample> actual, List<RefillFlowSample> expected)
    {
        var a = actual.OrderBy(s => s.Serial, StringComparer.Ordinal).ToList();
        return a.Count == expected.Count && a.Zip(expected).All(p =>
            p.First.Serial == p.Second.Serial && p.First.Lot == p.Second.Lot && p.First.Model == p.Second.Model && p.First.At == p.Second.At
            && Math.Abs(p.First.Factor - p.Second.Factor) < 1e-9 && Math.Abs(p.First.CycleMl - p.Second.CycleMl) < 1e-9);
    }
}
