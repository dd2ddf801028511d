using System.Text.Json.Nodes;
using PumpFleet.Domain.Statistics;
using PumpFleet.TestSupport;

namespace PumpFleet.Dashboard.Tests;

/// <summary>
/// The surveillance API over the seeded fleet (docs/api.md, cohorts): 20 pumps implanted at the seed's start for
/// spasticity, even ones on baclofen, odd ones on morphine; one anomaly each on SN0002 and SN0012 (under-infusion,
/// baclofen) and SN0007 and SN0017 (flow stall, morphine) 20 hours after implant; 72 hours of data. Other tests of
/// the run may add pumps of their own, so the seeded cohorts are found by key and fleet totals are compared as such.
/// </summary>
public sealed class SurveillanceApiTests(DashboardApp app)
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private async Task<JsonNode> GetJsonAsync(string path)
    {
        using var res = await app.Http.GetAsync(path, Ct);
        Assert.True(res.IsSuccessStatusCode, $"{path}: {(int)res.StatusCode} {await res.Content.ReadAsStringAsync(Ct)}");
        return JsonNode.Parse(await res.Content.ReadAsStringAsync(Ct))!;
    }

    // Anomalies of the seeded pumps of one drug, from the anomalies read model (another path than the cohorts'). Other
    // tests of the run may raise anomalies on seeded pumps too (the alerts page test opens a 'silent' one on SN0009), so
    // the expectation is read, not assumed: the seed alone gives 2 and 2 for each drug.
    private async Task<(long Count, long Pumps)> SeededAnomaliesAsync(string odd) =>
        (await app.CountAsync($"SELECT count(*) FROM pf_anomalies a WHERE a.serial ~ '^SN00[0-9][0-9]$' AND right(a.serial, 1)::int % 2 = {odd}"),
         await app.CountAsync($"SELECT count(DISTINCT a.serial) FROM pf_anomalies a WHERE a.serial ~ '^SN00[0-9][0-9]$' AND right(a.serial, 1)::int % 2 = {odd}"));

    [Fact]
    public async Task Cohorts_ByDrug_CountPumpsAffected_WithClopperPearson()
    {
        JsonNode report = null!;
        var expected = new Dictionary<string, (long Count, long Pumps)>();
        // Read until the cohorts and the anomalies agree (a concurrent test's anomaly reaches them at different times).
        await Eventually.TrueAsync(async () =>
        {
            expected["baclofen"] = await SeededAnomaliesAsync("0");
            expected["morphine"] = await SeededAnomaliesAsync("1");
            report = await GetJsonAsync("/api/cohorts?by=drug&metric=anomalies");
            var now = report["cohorts"]!.AsArray().ToDictionary(c => c!["key"]!["drug"]!.GetValue<string>());
            return expected.All(e => now[e.Key]!["count"]!.GetValue<long>() == e.Value.Count && now[e.Key]!["pumpsAffected"]!.GetValue<long>() == e.Value.Pumps)
                && expected["baclofen"] == await SeededAnomaliesAsync("0") && expected["morphine"] == await SeededAnomaliesAsync("1");
        }, TimeSpan.FromSeconds(30), "the drug cohorts count the seeded pumps' anomalies");
        Assert.Equal(["drug"], report["by"]!.AsArray().Select(x => x!.GetValue<string>()));
        var cohorts = report["cohorts"]!.AsArray().ToDictionary(c => c!["key"]!["drug"]!.GetValue<string>());
        var fleetPumps = report["fleetPumps"]!.GetValue<long>();
        var fleetAffected = report["fleetPumpsAffected"]!.GetValue<long>();
        Assert.True(fleetPumps >= DashboardApp.Pumps);
        foreach (var (drug, (count, affected)) in expected)
        {
            var c = cohorts[drug];
            Assert.True(count >= 2 && affected >= 2, $"{drug}: the seed's two anomalies on two pumps ({count}, {affected})");
            Assert.Equal(10, c!["pumps"]!.GetValue<long>());
            Assert.Equal(count, c["count"]!.GetValue<long>());
            Assert.Equal(affected, c["pumpsAffected"]!.GetValue<long>());
            Assert.Equal(affected / 10.0, c["proportionAffected"]!.GetValue<double>(), 9);
            var ci = ExactIntervals.ClopperPearson((int)affected, 10);
            Assert.Equal(ci.Lower, c["proportionLower"]!.GetValue<double>(), 5);
            Assert.Equal(ci.Upper, c["proportionUpper"]!.GetValue<double>(), 5);
            Assert.Equal((fleetAffected - (double)affected) / (fleetPumps - 10), c["restOfFleetProportion"]!.GetValue<double>(), 9);
            Assert.False(c["signal"]!.GetValue<bool>());
        }

        Assert.Equal(fleetAffected, report["cohorts"]!.AsArray().Sum(c => c!["pumpsAffected"]!.GetValue<long>()));
        Assert.Equal(fleetPumps, report["cohorts"]!.AsArray().Sum(c => c!["pumps"]!.GetValue<long>()));
    }

    [Fact]
    public async Task Cohorts_ByIndicationPhaseAndImplantAge_CoverTheFleet()
    {
        foreach (var (by, expected) in new[] { ("indication", "spasticity"), ("phase", "implanted"), ("implantAge", "0-6 months") })
        {
            var cohort = Assert.Single((await GetJsonAsync($"/api/cohorts?by={by}"))["cohorts"]!.AsArray(), c => c!["key"]![by]!.GetValue<string>() == expected);
            Assert.True(cohort!["pumps"]!.GetValue<long>() >= DashboardApp.Pumps);
            Assert.Null(cohort["model"]);
        }

        var two = (await GetJsonAsync("/api/cohorts?by=drug,indication"))["cohorts"]!.AsArray();
        Assert.Single(two, c => c!["key"]!["drug"]!.GetValue<string>() == "morphine" && c["key"]!["indication"]!.GetValue<string>() == "spasticity");
        Assert.Equal(["indication", "drug"], (await GetJsonAsync("/api/cohorts?by=drug,indication"))["by"]!.AsArray().Select(x => x!.GetValue<string>()));
    }

    [Fact]
    public async Task Cohorts_ByImplantAge_SplitEachPumpsFollowUpAcrossTheBands()
    {
        var report = await GetJsonAsync("/api/cohorts?by=implantAge&metric=alarms");
        var bands = report["cohorts"]!.AsArray().ToDictionary(c => c!["key"]!["implantAge"]!.GetValue<string>(), c => c!);

        // The same split in C# (Domain's ImplantAge.Split) over every identified member's follow-up.
        var expected = new Dictionary<string, double>();
        await using (var conn = new Npgsql.NpgsqlConnection(app.ConnectionString))
        {
            await conn.OpenAsync(Ct);
            await using var cmd = new Npgsql.NpgsqlCommand(
                "SELECT implanted_at, first_event_at, last_event_at FROM pf_cohort_members WHERE model IS NOT NULL AND first_event_at IS NOT NULL", conn);
            await using var r = await cmd.ExecuteReaderAsync(Ct);
            while (await r.ReadAsync(Ct))
            {
                DateTimeOffset? implanted = r.IsDBNull(0) ? null : r.GetFieldValue<DateTimeOffset>(0);
                foreach (var (band, days) in ImplantAge.Split(implanted, r.GetFieldValue<DateTimeOffset>(1), r.GetFieldValue<DateTimeOffset>(2)))
                {
                    expected[band] = expected.GetValueOrDefault(band) + days;
                }
            }
        }

        Assert.NotEmpty(expected);
        foreach (var (band, days) in expected)
        {
            Assert.True(bands.TryGetValue(band, out var c), $"band {band} is in the report");
            Assert.Equal(days, c!["pumpDays"]!.GetValue<double>(), 2);
        }

        // The split loses and adds nothing: pump-days as without it, and every alarm and anomaly of a member in one band.
        var byModel = await GetJsonAsync("/api/cohorts?by=model");
        Assert.Equal(byModel["fleetPumpDays"]!.GetValue<double>(), report["fleetPumpDays"]!.GetValue<double>(), 2);
        Assert.Equal(await app.CountAsync("SELECT count(*) FROM pf_alarm_log l JOIN pf_cohort_members m USING (serial) WHERE m.model IS NOT NULL"),
            bands.Values.Sum(c => c["alarms"]!.GetValue<long>()));
        Assert.Equal(await app.CountAsync("SELECT count(*) FROM pf_anomalies a JOIN pf_cohort_members m USING (serial) WHERE m.model IS NOT NULL"),
            bands.Values.Sum(c => c["anomalies"]!.GetValue<long>()));
    }

    [Fact]
    public async Task Cohorts_NameTheMultiplicityMethod_AndTakeTheRateAsked()
    {
        var report = await GetJsonAsync("/api/cohorts?by=model,firmware,lot&fdr=0.1");
        Assert.Equal("Benjamini–Hochberg", report["method"]!.GetValue<string>());
        Assert.Equal(0.1, report["falseDiscoveryRate"]!.GetValue<double>());
        Assert.Equal(0.95, report["confidence"]!.GetValue<double>());
        var cohorts = report["cohorts"]!.AsArray();
        // The number of tests is every cohort × measure (3 metrics × events and pumps) with enough counts.
        Assert.True(report["tests"]!.GetValue<int>() >= cohorts.Count(c => c!["rateQValue"] is not null));
        foreach (var c in cohorts)
        {
            if (c!["rateQValue"] is { } q)
            {
                Assert.True(q.GetValue<double>() >= c["ratePValue"]!.GetValue<double>(), "an adjusted value is never below its p-value");
            }

            var signal = c["signal"]!.GetValue<bool>();
            var anyBelow = (c["rateQValue"]?.GetValue<double>() ?? 1) < 0.1 || (c["proportionQValue"]?.GetValue<double>() ?? 1) < 0.1;
            Assert.Equal(anyBelow, signal);
        }

        Assert.Equal(0.05, (await GetJsonAsync("/api/cohorts"))["falseDiscoveryRate"]!.GetValue<double>());
    }

    [Fact]
    public async Task Survival_ByDrug_ToFirstFlowStall_IsKaplanMeier()
    {
        var report = await GetJsonAsync("/api/cohorts/survival?by=drug&endpoint=anomaly:flow-stall");
        Assert.Equal("anomaly:flow-stall", report["endpoint"]!.GetValue<string>());
        Assert.Contains("Kaplan–Meier", report["method"]!.GetValue<string>(), StringComparison.Ordinal);
        Assert.Contains("log-log", report["method"]!.GetValue<string>(), StringComparison.Ordinal);
        var cohorts = report["cohorts"]!.AsArray().ToDictionary(c => c!["label"]!.GetValue<string>());
        var morphine = cohorts["morphine"]!;
        Assert.Equal(10, morphine["pumps"]!.GetValue<long>());
        Assert.Equal(2, morphine["events"]!.GetValue<long>());
        Assert.Equal(8, morphine["censored"]!.GetValue<long>());
        var step = Assert.Single(morphine["steps"]!.AsArray())!;
        Assert.Equal(0, step["day"]!.GetValue<double>());   // 20 h after implant: day 0
        Assert.Equal(10, step["atRisk"]!.GetValue<long>());
        Assert.Equal(0.8, step["survival"]!.GetValue<double>(), 9);
        var expected = KaplanMeier.Estimate([new SurvivalObservation(0, 2, 0), new SurvivalObservation(2, 0, 8)]).Steps[0];
        Assert.Equal(expected.Lower, step["lower"]!.GetValue<double>(), 5);
        Assert.Equal(expected.Upper, step["upper"]!.GetValue<double>(), 5);
        Assert.True(morphine["lastDay"]!.GetValue<double>() >= 2);
        var baclofen = cohorts["baclofen"]!;
        Assert.Equal(0, baclofen["events"]!.GetValue<long>());
        Assert.Empty(baclofen["steps"]!.AsArray());

        // Nobody was explanted: every pump is censored at its last report.
        var explant = await GetJsonAsync("/api/cohorts/survival");
        Assert.Equal("explant", explant["endpoint"]!.GetValue<string>());
        var all = explant["cohorts"]!.AsArray();
        Assert.True(all.Sum(c => c!["censored"]!.GetValue<long>()) >= DashboardApp.Pumps);
        Assert.All(all, c => Assert.Empty(c!["steps"]!.AsArray()));
    }
}
