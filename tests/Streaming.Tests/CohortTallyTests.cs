using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using Npgsql;
using PumpFleet.Contracts.Events;
using PumpFleet.Contracts.Json;
using PumpFleet.Domain.Detection;
using PumpFleet.EventStore;
using PumpFleet.Grains.Detection.Fleet;
using PumpFleet.ReadModels;
using PumpFleet.TestSupport;

namespace PumpFleet.Streaming.Tests;

/// <summary>Cohort signals fed by the log stream: the tally grains' counts, and the job that tests them.</summary>
public sealed class CohortTallyTests(PostgresFixture pg)
{
    private static readonly DateTimeOffset T0 = new(2026, 9, 1, 0, 0, 0, TimeSpan.Zero);

    [Fact]
    public async Task AFaultInOneCohort_RaisesThatCohortsSignal_FromStreamCounts_ThatEqualAFullRecount()
    {
        var ct = TestContext.Current.CancellationToken;
        var cs = await StreamCluster.CreateDatabaseAsync(pg, "ct");
        await using var ds = NpgsqlDataSource.Create(cs);
        var store = new NpgsqlEventStore(ds);
        await using var cluster = await StreamCluster.StartAsync(cs, silos: 2);

        // Four lots of one model × firmware, six pumps each, 60 days of exposure per pump and two non-critical alarms;
        // one pump per lot also has one critical alarm. The fault: every pump of lot F raises four critical alarms.
        var model = "SM2-" + Guid.NewGuid().ToString("N")[..6].ToUpperInvariant();
        string[] lots = ["A", "B", "C", "F"];
        foreach (var lot in lots)
        {
            for (var i = 0; i < 6; i++)
            {
                var events = new List<PumpEvent>
                {
                    new DeviceIdentified { At = T0, Device = new DeviceInfo { Model = model, Firmware = "4.2.1", Lot = lot, ReservoirCapacityMl = 40 } },
                    Alarm(1, T0, "non-critical"),
                    Alarm(2, T0.AddDays(60), "non-critical"),
                };
                if (i == 0)
                {
                    events.Add(Alarm(3, T0.AddDays(5), "critical"));
                }

                if (lot == "F")
                {
                    events.AddRange(Enumerable.Range(10, 4).Select(s => Alarm(s, T0.AddDays(s), "critical")));
                }

                await AppendAsync(store, StreamCluster.NewStreamId("CT" + lot + i), events);
            }
        }

        // The stream's counts reach exactly what a full recount of the log says.
        var expected = await RecountAsync(ds, ct);
        Assert.Equal(4, expected.Count);
        await Eventually.TrueAsync(async () => Same(await CohortSignalJob.FromTalliesAsync(cluster.Client), expected), TimeSpan.FromSeconds(90),
            "the tally grains' counts equal a recount of pf_events");

        // The job tests those counts without a single query: its data source points at a port nothing listens on.
        await using var nowhere = NpgsqlDataSource.Create($"Host=127.0.0.1;Port={Ports.Free()};Database=none;Timeout=2");
        var job = new CohortSignalJob(nowhere, cluster.Client, Options.Create(new AnomalyDetectionOptions()), TimeProvider.System,
            new ConfigurationBuilder().Build(), NullLogger<CohortSignalJob>.Instance);
        var appended = await job.RunOnceAsync(ct);

        var signal = Assert.IsType<AnomalyDetected>(Assert.Single(appended));
        Assert.Equal("cohort-signal", signal.Kind);
        Assert.Contains($"lot F", signal.Summary, StringComparison.Ordinal);
        Assert.Contains("critical alarms", signal.Summary, StringComparison.Ordinal);

        // The same statistics as the table path: Evaluate over the recount finds the same single cohort.
        var fromRecount = CohortSignals.Evaluate(expected, new AnomalyDetectionOptions()).Where(kv => kv.Value is not null).Select(kv => kv.Key.Lot);
        Assert.Equal(["F"], fromRecount);

        // A second run changes nothing (the signal is open), and the cohort's own stream is not counted as a pump.
        Assert.Empty(await job.RunOnceAsync(ct));
        await Eventually.TrueAsync(async () => Same(await CohortSignalJob.FromTalliesAsync(cluster.Client), await RecountAsync(ds, ct)),
            TimeSpan.FromSeconds(30), "counts unchanged by the cohort's signal event");

        // Saved: every test pump's row in pf_cohort_tally at its stream's last version (after the next flush).
        await Eventually.TrueAsync(async () =>
        {
            await using var cmd = ds.CreateCommand("""
                SELECT count(*) FROM (SELECT stream_id, max(version) v FROM pf_events WHERE stream_id NOT LIKE '%:%' GROUP BY stream_id) e
                  JOIN pf_cohort_tally t ON t.serial = e.stream_id AND t.version = e.v
                """);
            return (long)(await cmd.ExecuteScalarAsync(ct))! == 24;
        }, TimeSpan.FromSeconds(30), "all 24 pumps saved at their last version");
    }

    [Fact]
    public void Tally_DropsRedeliveries_RefusesHoles_AndMovesAPumpBetweenCohorts()
    {
        var tally = new CohortTally();
        var id = EventJson.Serialize(new DeviceIdentified { At = T0, Device = new DeviceInfo { Model = "M", Firmware = "1", Lot = "L", ReservoirCapacityMl = 20 } });
        var alarm = EventJson.Serialize(Alarm(1, T0.AddDays(2), "critical"));
        var upgrade = EventJson.Serialize(new DeviceIdentified { At = T0.AddDays(3), Device = new DeviceInfo { Model = "M", Firmware = "2", Lot = "L", ReservoirCapacityMl = 20 } });

        Assert.Equal(TallyOutcome.Applied, tally.Apply("P1", 1, "device.identified", id, null, false));
        Assert.Equal(TallyOutcome.Gap, tally.Apply("P1", 3, "device.identified", upgrade, null, false));
        Assert.Equal(TallyOutcome.Applied, tally.Apply("P1", 2, "alarm.raised", alarm, T0.AddDays(2), false));
        Assert.Equal(TallyOutcome.Duplicate, tally.Apply("P1", 2, "alarm.raised", alarm, T0.AddDays(2), false));
        Assert.Equal(TallyOutcome.NotAPump, tally.Apply("cohort:M:1:L", 1, "alarm.raised", alarm, T0.AddDays(2), false));
        Assert.Equal(new CohortTotals(1, 0, 1, 1, 0), tally.Totals[new CohortKey("M", "1", "L")]);
        Assert.Equal(TallyOutcome.Applied, tally.Apply("P1", 3, "some.future.type", "not json", T0.AddDays(4), false));
        Assert.Equal(new CohortTotals(1, 2 * 86_400_000_000L, 1, 1, 0), tally.Totals[new CohortKey("M", "1", "L")]);

        Assert.Equal(TallyOutcome.Applied, tally.Apply("P1", 4, "device.identified", upgrade, null, false));
        Assert.False(tally.Totals.ContainsKey(new CohortKey("M", "1", "L")));
        Assert.Equal(new CohortTotals(1, 2 * 86_400_000_000L, 1, 1, 0), tally.Totals[new CohortKey("M", "2", "L")]);
        Assert.Equal(4, tally.VersionOf("P1"));
        Assert.Single(tally.TakeChanged());
        Assert.Empty(tally.TakeChanged());
    }

    private static AlarmRaised Alarm(long seq, DateTimeOffset at, string severity) =>
        new() { Seq = seq, At = at, Code = severity == "critical" ? "MOTOR_STALL" : "LOW_RESERVOIR", Severity = severity };

    private static async Task AppendAsync(NpgsqlEventStore store, string serial, List<PumpEvent> events)
    {
        var rows = events.Select(e => new EventToAppend(Guid.NewGuid(), EventTypes.NameOf(e), EventJson.Serialize(e),
            e is DeviceEvent d ? d.Seq : null, e is DeviceEvent dt ? dt.At : null, T0.AddDays(61), false)).ToList();
        await store.AppendAsync(serial, 0, rows, TestContext.Current.CancellationToken);
    }

    // A recount written independently of the tally: SQL over the whole log (identity from the last device.identified,
    // exposure from the device times of trusted device events, alarms by severity, anomalies of pump streams).
    private static async Task<List<CohortStats>> RecountAsync(NpgsqlDataSource ds, CancellationToken ct)
    {
        await using var cmd = ds.CreateCommand("""
            WITH id AS (
                SELECT DISTINCT ON (stream_id) stream_id, data->'device'->>'model' AS model, data->'device'->>'firmware' AS firmware,
                       data->'device'->>'lot' AS lot
                  FROM pf_events WHERE event_type = 'device.identified' ORDER BY stream_id, version DESC),
            ev AS (
                SELECT stream_id,
                       min(device_time) FILTER (WHERE seq IS NOT NULL AND NOT clock_suspect) AS first_at,
                       max(device_time) FILTER (WHERE seq IS NOT NULL AND NOT clock_suspect) AS last_at,
                       count(*) FILTER (WHERE event_type = 'alarm.raised') AS alarms,
                       count(*) FILTER (WHERE event_type = 'alarm.raised' AND data->>'severity' = 'critical') AS critical,
                       count(*) FILTER (WHERE event_type = 'anomaly.detected') AS anomalies
                  FROM pf_events WHERE stream_id NOT LIKE '%:%' GROUP BY stream_id)
            SELECT model, firmware, lot, count(*), coalesce(sum(extract(epoch FROM last_at - first_at)), 0)::float8 / 86400,
                   sum(alarms)::bigint, sum(critical)::bigint, sum(anomalies)::bigint
              FROM id JOIN ev USING (stream_id) GROUP BY model, firmware, lot ORDER BY model, firmware, lot
            """);
        var result = new List<CohortStats>();
        await using var r = await cmd.ExecuteReaderAsync(ct);
        while (await r.ReadAsync(ct))
        {
            result.Add(new CohortStats(r.GetString(0), r.GetString(1), r.GetString(2), r.GetInt64(3), r.GetDouble(4), r.GetInt64(5), r.GetInt64(6), r.GetInt64(7)));
        }

        return result;
    }

    private static bool Same(List<CohortStats> actual, List<CohortStats> expected) =>
        actual.Count == expected.Count && actual.Zip(expected).All(p =>
            p.First.Model == p.Second.Model && p.First.Firmware == p.Second.Firmware && p.First.Lot == p.Second.Lot
            && p.First.Pumps == p.Second.Pumps && Math.Abs(p.First.PumpDays - p.Second.PumpDays) < 1e-9
            && p.First.Alarms == p.Second.Alarms && p.First.CriticalAlarms == p.Second.CriticalAlarms && p.First.Anomalies == p.Second.Anomalies);
}
