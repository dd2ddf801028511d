using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using System.Text.Json.Nodes;
using PumpFleet.TestSupport;

namespace PumpFleet.Dashboard.Tests;

public sealed class ApiTests(DashboardApp app)
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;
    private HttpClient Http => app.Http;

    private async Task<JsonNode> GetJsonAsync(string path)
    {
        using var res = await Http.GetAsync(path, Ct);
        Assert.True(res.IsSuccessStatusCode, $"{path}: {(int)res.StatusCode} {await res.Content.ReadAsStringAsync(Ct)}");
        return JsonNode.Parse(await res.Content.ReadAsStringAsync(Ct))!;
    }

    private async Task<JsonNode> ProblemAsync(string path, HttpStatusCode expected, HttpMethod? method = null, object? body = null)
    {
        using var req = new HttpRequestMessage(method ?? HttpMethod.Get, path);
        if (body is not null)
        {
            req.Content = JsonContent.Create(body);
        }

        using var res = await Http.SendAsync(req, Ct);
        Assert.Equal(expected, res.StatusCode);
        Assert.Equal("application/problem+json", res.Content.Headers.ContentType?.MediaType);
        return JsonNode.Parse(await res.Content.ReadAsStringAsync(Ct))!;
    }

    [Fact]
    public async Task ListPumps_ReturnsSummariesWithTotal_CriticalFirst()
    {
        var page = await GetJsonAsync("/api/pumps");
        Assert.Equal(DashboardApp.Pumps, page["total"]!.GetValue<long>());
        var items = page["items"]!.AsArray();
        Assert.Equal(DashboardApp.Pumps, items.Count);
        Assert.Equal("critical", items[0]!["status"]!.GetValue<string>());
        var first = items.First(i => i!["serial"]!.GetValue<string>() == "SN0001")!;
        foreach (var field in new[] { "serial", "hubId", "model", "firmware", "lot", "phase", "drug", "status", "reservoirMl", "forecastEmptyAt", "activeAlarms", "openAnomalies", "lastSeenAt" })
        {
            Assert.True(first.AsObject().ContainsKey(field), $"summary lacks {field}");
        }

        Assert.Equal("HUB-SN0001", first["hubId"]!.GetValue<string>());
        Assert.Equal("implanted", first["phase"]!.GetValue<string>());
        Assert.NotNull(first["forecastEmptyAt"]);
    }

    [Fact]
    public async Task ListPumps_PagesAreStableAndCoverEveryPumpOnce()
    {
        var seen = new List<string>();
        for (var p = 1; p <= 3; p++)
        {
            var page = await GetJsonAsync($"/api/pumps?page={p}&pageSize=7&sort=lastSeenAt&dir=desc");
            Assert.Equal(7, page["pageSize"]!.GetValue<int>());
            seen.AddRange(page["items"]!.AsArray().Select(i => i!["serial"]!.GetValue<string>()));
        }

        Assert.Equal(DashboardApp.Pumps, seen.Count);
        Assert.Equal(DashboardApp.Pumps, seen.Distinct().Count());
    }

    // Migration 060 indexes forecast_empty_at and next_refill_due_at through their UTC day and the list orders by the day
    // first; last_seen_at lost its index. The order must still be the timestamp's (nulls last), then the serial's.
    [Theory]
    [InlineData("forecastEmptyAt", "asc")]
    [InlineData("forecastEmptyAt", "desc")]
    [InlineData("nextRefillDueAt", "asc")]
    [InlineData("nextRefillDueAt", "desc")]
    [InlineData("lastSeenAt", "asc")]
    [InlineData("lastSeenAt", "desc")]
    public async Task ListPumps_SortedByATime_IsInThatTimesOrderThenBySerial(string sort, string dir)
    {
        var page = await GetJsonAsync($"/api/pumps?pageSize=200&sort={sort}&dir={dir}");
        var rows = page["items"]!.AsArray()
            .Select(i => (Serial: i!["serial"]!.GetValue<string>(), At: i[sort] is { } v ? v.GetValue<DateTimeOffset>() : (DateTimeOffset?)null))
            .ToList();
        Assert.True(rows.Count(r => r.At is not null) >= 2, $"the seeded pumps have {sort}");
        var sign = dir == "asc" ? 1 : -1;
        var expected = rows.Where(r => r.At is not null)
            .OrderBy(r => r.At!.Value.UtcTicks * sign).ThenBy(r => r.Serial, sign == 1 ? StringComparer.Ordinal : Comparer<string>.Create((a, b) => string.CompareOrdinal(b, a)))
            .Concat(rows.Where(r => r.At is null).OrderBy(r => r.Serial, sign == 1 ? StringComparer.Ordinal : Comparer<string>.Create((a, b) => string.CompareOrdinal(b, a))))
            .Select(r => r.Serial);
        Assert.Equal(expected, rows.Select(r => r.Serial));
    }

    [Fact]
    public async Task ListPumps_FiltersNarrow()
    {
        var critical = await GetJsonAsync("/api/pumps?status=critical");
        Assert.Equal(await app.CountAsync("SELECT count(*) FROM pf_pump_status WHERE status = 'critical'"), critical["total"]!.GetValue<long>());
        Assert.All(critical["items"]!.AsArray(), i => Assert.Equal("critical", i!["status"]!.GetValue<string>()));

        var model = await GetJsonAsync("/api/pumps?model=SM2-20&firmware=4.2.1");
        Assert.InRange(model["total"]!.GetValue<long>(), 1, DashboardApp.Pumps - 1);
        Assert.All(model["items"]!.AsArray(), i => Assert.Equal("SM2-20", i!["model"]!.GetValue<string>()));

        var search = await GetJsonAsync("/api/pumps?q=SN001");
        Assert.Equal(10, search["total"]!.GetValue<long>());
    }

    [Theory]
    [InlineData("/api/pumps?page=0", "page")]
    [InlineData("/api/pumps?pageSize=100000", "pageSize")]
    [InlineData("/api/pumps?pageSize=abc", "pageSize")]
    [InlineData("/api/pumps?status=broken", "status")]
    [InlineData("/api/pumps?sort=colour", "sort")]
    [InlineData("/api/pumps?dir=up", "dir")]
    [InlineData("/api/pumps/SN0001?asOf=yesterday", "asOf")]
    [InlineData("/api/pumps/bad%20serial", "serial")]
    [InlineData("/api/pumps/SN0001/events?afterSeq=-1", "afterSeq")]
    [InlineData("/api/pumps/SN0001/events?limit=0", "limit")]
    [InlineData("/api/pumps/SN0001/flow?bucket=month", "bucket")]
    [InlineData("/api/pumps/SN0001/flow?from=2026-02-30", "from")]
    [InlineData("/api/pumps/SN0001/flow?from=2026-11-10&to=2026-11-01", "from")]
    [InlineData("/api/anomalies?status=closed", "status")]
    [InlineData("/api/anomalies?severity=high", "severity")]
    [InlineData("/api/cohorts?by=colour", "by")]
    [InlineData("/api/cohorts?by=model,model", "by")]
    [InlineData("/api/cohorts?metric=deaths", "metric")]
    [InlineData("/api/cohorts?fdr=0", "fdr")]
    [InlineData("/api/cohorts?fdr=0.5", "fdr")]
    [InlineData("/api/cohorts?fdr=abc", "fdr")]
    [InlineData("/api/cohorts?by=drug,colour", "by")]
    [InlineData("/api/cohorts/survival?by=implantAge", "by")]
    [InlineData("/api/cohorts/survival?endpoint=death", "endpoint")]
    [InlineData("/api/cohorts/survival?endpoint=anomaly:gremlins", "endpoint")]
    [InlineData("/api/pumps/SN0001/complaint-file?format=xml", "format")]
    [InlineData("/api/pumps/SN0001/complaint-file?from=2026-02-01T00:00:00Z&to=2026-01-01T00:00:00Z", "from")]
    [InlineData("/api/pumps/SN0001/complaint-file?from=yesterday", "from")]
    public async Task BadParameter_IsAProblemNamingTheParameter(string path, string parameter)
    {
        var problem = await ProblemAsync(path, HttpStatusCode.BadRequest);
        Assert.Equal(400, problem["status"]!.GetValue<int>());
        var errors = problem["errors"]!.AsObject();
        Assert.True(errors.ContainsKey(parameter), $"errors should name '{parameter}': {problem.ToJsonString()}");
        Assert.False(string.IsNullOrWhiteSpace(errors[parameter]![0]!.GetValue<string>()));
    }

    [Fact]
    public async Task GetPump_ReturnsCurrentState_And404ForUnknown()
    {
        var pump = await GetJsonAsync("/api/pumps/SN0001");
        Assert.Equal("SN0001", pump["serial"]!.GetValue<string>());
        Assert.True(pump["lastSeq"]!.GetValue<long>() > 72);
        Assert.Equal("continuous", pump["prescription"]!["mode"]!.GetValue<string>());
        Assert.Equal(87, pump["batteryPct"]!.GetValue<double>());
        Assert.Empty(pump["gaps"]!.AsArray());

        var problem = await ProblemAsync("/api/pumps/NOPE0001", HttpStatusCode.NotFound);
        Assert.Equal(404, problem["status"]!.GetValue<int>());
    }

    [Fact]
    public async Task GetPump_AsOf_RebuildsThePastState()
    {
        var now = await GetJsonAsync("/api/pumps/SN0001");
        var asOf = app.Seed.Start.AddHours(30).AddMinutes(30).ToString("O");
        var past = await GetJsonAsync("/api/pumps/SN0001?asOf=" + Uri.EscapeDataString(asOf));
        Assert.True(past["lastSeq"]!.GetValue<long>() < now["lastSeq"]!.GetValue<long>());
        // Pump 1 raised LOW_RESERVOIR at hour 30 and cleared it at hour 40.
        Assert.Equal("LOW_RESERVOIR", past["activeAlarms"]!.AsArray().Single()!["code"]!.GetValue<string>());
        Assert.Empty(now["activeAlarms"]!.AsArray());
        Assert.True(past["reservoirMl"]!.GetValue<double>() > now["reservoirMl"]!.GetValue<double>());
    }

    [Fact]
    public async Task GetEvents_ReturnsStoredEventsInSeqOrderWithEnvelope()
    {
        var events = (await GetJsonAsync("/api/pumps/SN0001/events?afterSeq=0&limit=5")).AsArray();
        Assert.Equal([1L, 2, 3, 4, 5], events.Select(e => e!["seq"]!.GetValue<long>()));
        Assert.Equal("therapy.phase", events[0]!["type"]!.GetValue<string>());
        Assert.Equal("implanted", events[0]!["phase"]!.GetValue<string>());
        Assert.False(events[0]!["clockSuspect"]!.GetValue<bool>());
        Assert.NotNull(events[0]!["receivedAt"]);
        Assert.NotNull(events[0]!["at"]);

        var next = (await GetJsonAsync("/api/pumps/SN0001/events?afterSeq=5&limit=2")).AsArray();
        Assert.Equal([6L, 7], next.Select(e => e!["seq"]!.GetValue<long>()));
    }

    [Fact]
    public async Task GetFlow_DayAndWeekBuckets()
    {
        var day = await GetJsonAsync("/api/pumps/SN0001/flow?bucket=day");
        var points = day["points"]!.AsArray();
        Assert.InRange(points.Count, 3, 4);
        // Pump 1 is programmed at 0.6 mL/day; a full middle day delivers exactly that.
        var full = points[1]!;
        Assert.Equal(0.6, full["deliveredMlPerDay"]!.GetValue<double>(), 3);
        Assert.Equal(0.6, full["programmedMlPerDay"]!.GetValue<double>(), 2);
        Assert.Equal(0.6, full["measuredMlPerDay"]!.GetValue<double>(), 2);
        Assert.Equal(1, points[0]!["refills"]!.GetValue<int>());
        Assert.NotNull(points[^1]!["reservoirMl"]);

        var week = await GetJsonAsync($"/api/pumps/SN0001/flow?bucket=week&from={app.Seed.Start:yyyy-MM-dd}&to={app.Seed.Start.AddDays(6):yyyy-MM-dd}");
        Assert.Single(week["points"]!.AsArray());
        Assert.Equal("week", week["bucket"]!.GetValue<string>());
    }

    [Fact]
    public async Task Anomalies_ListFilterAcknowledgeResolve()
    {
        var open = (await GetJsonAsync("/api/anomalies?status=open")).AsArray();
        Assert.Contains(open, a => a!["id"]!.GetValue<string>() == "A-SN0002-flow");
        var a7 = open.Single(a => a!["id"]!.GetValue<string>() == "A-SN0007-flow")!;
        Assert.Equal("SN0007", a7["serial"]!.GetValue<string>());
        Assert.Equal(0.6, a7["evidence"]!["ratio"]!.GetValue<double>());
        Assert.All((await GetJsonAsync("/api/anomalies?kind=flow-stall")).AsArray(), a => Assert.Equal("flow-stall", a!["kind"]!.GetValue<string>()));
        Assert.All((await GetJsonAsync("/api/anomalies?status=all&severity=critical")).AsArray(), a => Assert.Equal("critical", a!["severity"]!.GetValue<string>()));

        using (var ack = await Http.PostAsJsonAsync("/api/anomalies/A-SN0007-flow/acknowledge", new { note = "calling the clinic" }, Ct))
        {
            Assert.Equal(HttpStatusCode.OK, ack.StatusCode);
            var body = JsonNode.Parse(await ack.Content.ReadAsStringAsync(Ct))!;
            Assert.Equal("local-admin", body["by"]!.GetValue<string>());
        }

        await Eventually.TrueAsync(async () => await app.CountAsync(
                "SELECT count(*) FROM pf_anomalies WHERE id = 'A-SN0007-flow' AND status = 'acknowledged' AND acknowledged_by = 'local-admin' AND note = 'calling the clinic'") == 1,
            TimeSpan.FromSeconds(20), "the acknowledgement reached the read model");
        await app.ReadVersionAsync();
        Assert.DoesNotContain((await GetJsonAsync("/api/anomalies")).AsArray(), a => a!["id"]!.GetValue<string>() == "A-SN0007-flow");
        await ProblemAsync("/api/anomalies/A-SN0007-flow/acknowledge", HttpStatusCode.Conflict, HttpMethod.Post, new { note = "again" });

        using (var resolve = await Http.PostAsJsonAsync("/api/anomalies/A-SN0007-flow/resolve", new { note = "catheter revised" }, Ct))
        {
            Assert.Equal(HttpStatusCode.OK, resolve.StatusCode);
        }

        await Eventually.TrueAsync(async () => await app.CountAsync(
                "SELECT count(*) FROM pf_anomalies WHERE id = 'A-SN0007-flow' AND status = 'resolved' AND resolved_by = 'local-admin'") == 1,
            TimeSpan.FromSeconds(20), "the resolution reached the read model");
        await ProblemAsync("/api/anomalies/A-SN0007-flow/resolve", HttpStatusCode.Conflict, HttpMethod.Post, new { note = "again" });
        await ProblemAsync("/api/anomalies/NO-SUCH/acknowledge", HttpStatusCode.NotFound, HttpMethod.Post, new { note = "x" });

        // The audit trail: both actions are events in the pump's stream, with who and the note.
        var log = await app.CountAsync("SELECT count(*) FROM pf_events WHERE stream_id = 'SN0007' AND event_type IN ('anomaly.acknowledged', 'anomaly.resolved') AND data->>'by' = 'local-admin'");
        Assert.Equal(2, log);
    }

    [Fact]
    public async Task Alarms_ActiveCriticalAcrossTheFleet()
    {
        var alarms = (await GetJsonAsync("/api/alarms?active=true&severity=critical")).AsArray();
        Assert.Equal(await app.CountAsync("SELECT count(*) FROM pf_alarm_log WHERE cleared_at IS NULL AND severity = 'critical'"), alarms.Count);
        // MOTOR_STALL from the seed; the live-update browser test may have added a CATHETER_OCCLUSION.
        Assert.All(alarms, a => Assert.Contains(a!["code"]!.GetValue<string>(), new[] { "MOTOR_STALL", "CATHETER_OCCLUSION" }));
        var pumpAlarms = (await GetJsonAsync("/api/pumps/SN0001/alarms")).AsArray();
        Assert.NotNull(Assert.Single(pumpAlarms)!["clearedAt"]);
    }

    [Fact]
    public async Task Cohorts_RatesIntervalsAndSignal()
    {
        var report = await GetJsonAsync("/api/cohorts?by=model,firmware,lot");
        var cohorts = report["cohorts"]!.AsArray();
        Assert.Equal(DashboardApp.Pumps, cohorts.Sum(c => c!["pumps"]!.GetValue<long>()));
        foreach (var c in cohorts)
        {
            var count = c!["count"]!.GetValue<long>();
            var days = c["pumpDays"]!.GetValue<double>();
            Assert.Equal(count / days * 1000, c["rate"]!.GetValue<double>(), 1e-3 * c["rate"]!.GetValue<double>() + 1e-9);
            Assert.True(c["rateLower"]!.GetValue<double>() <= c["rate"]!.GetValue<double>());
            Assert.True(c["rateUpper"]!.GetValue<double>() > c["rate"]!.GetValue<double>());
            Assert.True(c["signal"]!.GetValueKind() is JsonValueKind.True or JsonValueKind.False);
        }

        var byModel = await GetJsonAsync("/api/cohorts?by=model&metric=critical-alarms");
        Assert.Equal(3, byModel["cohorts"]!.AsArray().Count);
        Assert.All(byModel["cohorts"]!.AsArray(), c => Assert.Null(c!["firmware"]));
        Assert.Equal("critical-alarms", byModel["metric"]!.GetValue<string>());
    }

    [Fact]
    public async Task OpenApi_DescribesTheApi()
    {
        var doc = await GetJsonAsync("/openapi/v1.json");
        var paths = doc["paths"]!.AsObject();
        foreach (var p in new[] { "/api/pumps", "/api/pumps/{serial}", "/api/pumps/{serial}/events", "/api/pumps/{serial}/flow", "/api/anomalies",
                     "/api/anomalies/{id}/acknowledge", "/api/anomalies/{id}/resolve", "/api/cohorts", "/api/admin/projections/{name}/rebuild",
                     "/api/therapies", "/api/therapies/{id}", "/api/therapies/{id}/open", "/api/therapies/{id}/replace", "/api/therapies/{id}/explant" })
        {
            Assert.True(paths.ContainsKey(p), $"OpenAPI lacks {p}");
        }
    }

    [Fact]
    public async Task OrleansDashboard_IsServedUnderItsSlashPath()
    {
        using var page = await Http.GetAsync("/orleans/", Ct);
        Assert.Equal(HttpStatusCode.OK, page.StatusCode);
        using var handler = new HttpClientHandler { AllowAutoRedirect = false };
        using var raw = new HttpClient(handler) { BaseAddress = app.BaseAddress };
        using var bare = await raw.GetAsync("/orleans", Ct);
        Assert.Equal(HttpStatusCode.Redirect, bare.StatusCode);
        Assert.Equal("/orleans/", bare.Headers.Location!.ToString());
    }

    [Fact]
    public async Task Metrics_ExportProjectionLagAndFleetGauges()
    {
        string[] series =
        [
            "pumpfleet_projection_lag_seconds{", "pumpfleet_projection_lag_events{", "pumpfleet_pumps{",
            "pumpfleet_depletion_risk_pumps{", "pumpfleet_quarantine_size", "pumpfleet_alarms_active{",
        ];
        var missing = series;
        var scrapes = 0;
        try
        {
            // The gauges read a snapshot refreshed every 0.5 s here; a refresh can wait behind another test's rebuild
            // of the read models, so the wait is generous (it ends as soon as every series is there).
            await Eventually.TrueAsync(async () =>
            {
                var text = await Http.GetStringAsync("/metrics", Ct);
                scrapes++;
                missing = [.. series.Where(s => !text.Contains(s, StringComparison.Ordinal))];
                return missing.Length == 0;
            }, TimeSpan.FromSeconds(60), "the gauges are exported");
        }
        catch (TimeoutException e)
        {
            // Say which series never appeared: a bare timeout hid it when this failed once on a clean clone.
            // "Every series missing" with no successful scrape is a different failure (the endpoint failed or hung: see
            // the inner exception) from a scrape that answered without them.
            throw new TimeoutException($"{e.Message}; {scrapes} scrapes answered; missing: {string.Join(", ", missing)}", e);
        }
    }

    [Fact]
    public async Task Rebuild_ThroughTheAdminApi_RefillsTheReadModels()
    {
        // Every log partition's pumps checkpoint at that partition's newest event (one checkpoint per partition).
        async Task<bool> CaughtUpAsync() => await app.CountAsync("SELECT count(*) FROM pf_pump_status WHERE last_seq > 0") == DashboardApp.Pumps
            && await app.CountAsync("""
                SELECT count(*) FROM (SELECT DISTINCT log_partition FROM pf_events) p
                WHERE NOT EXISTS (SELECT 1 FROM pf_checkpoints c
                    WHERE c.name = 'projection:pumps:' || p.log_partition || 'of16'
                      AND (c.transaction_id, c.global_position) = (SELECT e.transaction_id, e.global_position FROM pf_events e
                          WHERE e.log_partition = p.log_partition ORDER BY e.transaction_id DESC, e.global_position DESC LIMIT 1))
                """) == 0;

        // The list as the read model holds it once it has every event (a test before may just have appended some: the
        // anomaly test's acknowledge and resolve, which change a pump's status, wait for the anomalies projection only),
        // read at a version of now, not one up to VersionMaxAge old.
        await Eventually.TrueAsync(CaughtUpAsync, TimeSpan.FromSeconds(30), "the pumps projection caught up before the rebuild");
        await app.ReadVersionAsync();
        var before = await GetJsonAsync("/api/pumps?pageSize=500");
        using (var res = await Http.PostAsync("/api/admin/projections/pumps/rebuild", null, Ct))
        {
            Assert.Equal(HttpStatusCode.Accepted, res.StatusCode);
        }

        await Eventually.TrueAsync(CaughtUpAsync, TimeSpan.FromSeconds(30), "the rebuilt projection caught up");
        await app.ReadVersionAsync();
        var after = await GetJsonAsync("/api/pumps?pageSize=500");
        Assert.Equal(before.ToJsonString(), after.ToJsonString());
        await ProblemAsync("/api/admin/projections/nope/rebuild", HttpStatusCode.NotFound, HttpMethod.Post);
    }

    [Fact]
    public async Task ParkedEvents_AreListed_AndARetryOfNoParkedEventIsNotFound()
    {
        var list = await GetJsonAsync("/api/admin/projections/parked?all=true");
        Assert.NotNull(list["parked"]);
        Assert.Empty(list["parked"]!.AsArray());
        await ProblemAsync("/api/admin/projections/parked/987654/retry", HttpStatusCode.NotFound, HttpMethod.Post);
    }
}
