using System.Security.Claims;
using Microsoft.Extensions.Options;
using PumpFleet.Contracts;
using PumpFleet.Dashboard.Caching;
using PumpFleet.Dashboard.Hosting;
using PumpFleet.Domain.Statistics;
using PumpFleet.Gateway.Hubs;
using PumpFleet.ReadModels;

namespace PumpFleet.Dashboard.Api;

/// <summary><c>GET /api/cohorts</c> and <c>GET /api/cohorts/survival</c>: post-market surveillance (docs/api.md, cohorts).</summary>
internal static class CohortEndpoints
{
    private static readonly string[] Metrics = ["alarms", "critical-alarms", "anomalies"];
    private const double Confidence = 0.95;

    public static RouteGroupBuilder MapCohortEndpoints(this RouteGroupBuilder api)
    {
        api.MapGet("/cohorts", GetAsync).WithName("ListCohorts")
            .WithSummary("Per cohort (model, firmware, lot, indication, drug, phase, implant age): pumps, pump-days, events and pumps affected, " +
                         "rates per 1000 pump-days (exact Garwood) and proportions affected (exact Clopper–Pearson), and a Benjamini–Hochberg signal")
            .Produces<CohortReport>().ProducesValidationProblem();
        api.MapGet("/cohorts/survival", SurvivalAsync).WithName("CohortSurvival")
            .WithSummary("Kaplan–Meier device survival per cohort from implant to explant or a first failure, with Greenwood log-log 95 % bands")
            .Produces<SurvivalReport>().ProducesValidationProblem();
        return api;
    }

    private static async Task<IResult> GetAsync(IReadModelQueries queries, HubStore hubs, SharedReadCache cache, ClaimsPrincipal user,
        IOptions<DashboardOptions> options, CancellationToken ct, string? by = null, string? metric = null, string? minCount = null, string? fdr = null, string? clinicId = null)
    {
        var p = new QueryParameters();
        var ordered = Dimensions(p, by ?? "model,firmware,lot", CohortDimensions.All);
        var m = p.OneOf("metric", metric, Metrics) ?? "alarms";
        var minimum = p.Int("minCount", minCount, options.Value.SignalMinimumCount, 1, 1_000_000);
        var q = p.Fraction("fdr", fdr, options.Value.SignalFalseDiscoveryRate, DashboardOptionsValidator.MaxFalseDiscoveryRate);
        var (clinicHubs, clinic) = await ClinicEndpoints.ResolveAsync(p, hubs, clinicId, ct);
        if (p.HasErrors)
        {
            return p.Problem();
        }

        // Within a clinic the rest of the fleet is the rest of the clinic's pumps: the test compares like with like.
        // Cached per read-model version (the Surveillance page re-reads on every push): the query reads projection
        // tables only once the clinic's hubs are resolved from the registry, so the hubs go into the key.
        var rows = await cache.GetAsync(ReadKey.For("cohorts", user, ordered, HubsKey(clinicHubs)), c => queries.CohortsAsync(ordered, c, clinicHubs), ct);
        // Every metric is screened (events and pumps affected), so the adjustment covers all cohorts × measures
        // the table can show, whichever metric is on screen: switching metric cannot shop for a signal.
        var screened = CohortSurveillance.Screen(
            [.. rows.Select(r => new CohortCounts(r.Pumps, r.PumpDays,
                [new MeasureCount(r.Alarms, r.AlarmPumps), new MeasureCount(r.CriticalAlarms, r.CriticalAlarmPumps), new MeasureCount(r.Anomalies, r.AnomalyPumps)]))],
            minimum, q, Confidence);
        var mi = Array.IndexOf(Metrics, m);
        var tests = screened.Sum(c => c.Count(e => e.RateP is not null) + c.Count(e => e.ProportionP is not null));
        var items = rows.Select((r, i) =>
        {
            var e = screened[i][mi];
            var key = ordered.Select((d, j) => (d, r.Key[j])).ToDictionary(x => x.d, x => x.Item2, StringComparer.Ordinal);
            return new CohortItem(key.GetValueOrDefault("model"), key.GetValueOrDefault("firmware"), key.GetValueOrDefault("lot"), r.Pumps,
                Math.Round(r.PumpDays, 3), r.Alarms, r.CriticalAlarms, r.Anomalies, m, e.Events, Round(e.Rate), Round(e.RateLower), Round(e.RateUpper),
                Round(e.RestRate), e.Signal, key, e.PumpsAffected, Round(e.Proportion), Round(e.ProportionLower), Round(e.ProportionUpper),
                Round(e.RestProportion), e.RateP, e.RateQ, e.ProportionP, e.ProportionQ);
        }).ToList();
        var fleetDays = rows.Sum(r => r.PumpDays);
        var fleetCount = items.Sum(c => c.Count);
        return TypedResults.Ok(new CohortReport(ordered, m, minimum, Math.Round(fleetDays, 3), fleetCount,
            fleetDays > 0 ? Round(fleetCount / fleetDays * 1000) : null, items, CohortSurveillance.MethodName, q, tests, Confidence,
            rows.Sum(r => r.Pumps), items.Sum(c => c.PumpsAffected), clinic?.ClinicId));
    }

    private static async Task<IResult> SurvivalAsync(IReadModelQueries queries, HubStore hubs, SharedReadCache cache, ClaimsPrincipal user, CancellationToken ct,
        string? by = null, string? endpoint = null, string? clinicId = null)
    {
        var p = new QueryParameters();
        var ordered = Dimensions(p, by ?? "model", CohortDimensions.Survival);
        var end = endpoint ?? "explant";
        if (!IsEndpoint(end))
        {
            p.Error("endpoint", $"'{end}' is not an end point: explant, anomaly:<kind> ({string.Join(", ", Vocabulary.AnomalyKinds.Order(StringComparer.Ordinal))}) " +
                                $"or alarm:<code> ({string.Join(", ", Vocabulary.AlarmCodes.Order(StringComparer.Ordinal))}).");
        }

        var (clinicHubs, clinic) = await ClinicEndpoints.ResolveAsync(p, hubs, clinicId, ct);
        if (p.HasErrors)
        {
            return p.Problem();
        }

        var data = await cache.GetAsync(ReadKey.For("survival", user, ordered, end, HubsKey(clinicHubs)), c => queries.SurvivalAsync(ordered, end, c, clinicHubs), ct);
        var cohorts = data.Rows.GroupBy(r => string.Join("\u001f", r.Key), StringComparer.Ordinal).Select(g =>
        {
            var first = g.First();
            var curve = KaplanMeier.Estimate(g.Select(r => new SurvivalObservation(r.Day, r.Events, r.Censored)), Confidence);
            var key = ordered.Select((d, j) => (d, first.Key[j])).ToDictionary(x => x.d, x => x.Item2, StringComparer.Ordinal);
            return new SurvivalCohort(key, string.Join(" · ", first.Key), curve.Subjects, curve.Events, curve.Censored, curve.LastTime,
                [.. curve.Steps.Select(s => new SurvivalPoint(s.Time, s.AtRisk, s.Events, s.Censored, Math.Round(s.Survival, 6), Math.Round(s.Lower, 6), Math.Round(s.Upper, 6)))]);
        }).ToList();
        return TypedResults.Ok(new SurvivalReport(ordered, end, KaplanMeier.MethodName, Confidence, data.WithoutImplantDate, data.EndPointBeforeImplant, cohorts,
            clinic?.ClinicId));
    }

    private static bool IsEndpoint(string s) =>
        s == "explant"
        || (s.StartsWith("anomaly:", StringComparison.Ordinal) && Vocabulary.AnomalyKinds.Contains(s["anomaly:".Length..]))
        || (s.StartsWith("alarm:", StringComparison.Ordinal) && Vocabulary.AlarmCodes.Contains(s["alarm:".Length..]));

    // Canonical order, so the SQL is one of a few fixed shapes whatever order the caller wrote.
    private static List<string> Dimensions(QueryParameters p, string raw, IReadOnlyList<string> allowed)
    {
        var dims = raw.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries);
        var bad = dims.Where(d => !allowed.Contains(d, StringComparer.Ordinal)).ToList();
        if (bad.Count > 0 || dims.Length == 0 || dims.Distinct(StringComparer.Ordinal).Count() != dims.Length)
        {
            p.Error("by", $"must be a comma-separated, non-repeating list of: {string.Join(", ", allowed)}" + (bad.Count > 0 ? $" (unknown: {string.Join(", ", bad)})." : "."));
            return [];
        }

        return [.. allowed.Where(d => dims.Contains(d, StringComparer.Ordinal))];
    }

    // A clinic's hubs as a key part, in a fixed order; null (the whole fleet) stays apart from a clinic without hubs.
    private static string[]? HubsKey(IReadOnlyList<string>? hubIds) => hubIds?.Order(StringComparer.Ordinal).ToArray();

    private static double? Round(double? v) => v is { } x ? Math.Round(x, 6) : null;
}
