using PumpFleet.Domain.Statistics;
using Microsoft.Extensions.Options;
using PumpFleet.Dashboard.Hosting;
using PumpFleet.Dashboard.Stats;
using PumpFleet.ReadModels;

namespace PumpFleet.Dashboard.Api;

/// <summary><c>GET /api/cohorts</c>: post-market surveillance rates (docs/api.md, cohorts).</summary>
internal static class CohortEndpoints
{
    private static readonly string[] Dimensions = ["model", "firmware", "lot"];
    private static readonly string[] Metrics = ["alarms", "critical-alarms", "anomalies"];

    public static RouteGroupBuilder MapCohortEndpoints(this RouteGroupBuilder api)
    {
        api.MapGet("/cohorts", GetAsync).WithName("ListCohorts")
            .WithSummary("Per cohort: pumps, pump-days, alarm and anomaly counts, rate per 1000 pump-days with an exact Poisson 95 % interval, and signal")
            .Produces<CohortReport>().ProducesValidationProblem();
        return api;
    }

    private static async Task<IResult> GetAsync(IReadModelQueries queries, IOptions<DashboardOptions> options, CancellationToken ct,
        string? by = null, string? metric = null, string? minCount = null)
    {
        var p = new QueryParameters();
        var dims = (by ?? "model,firmware,lot").Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries);
        var bad = dims.Where(d => !Dimensions.Contains(d, StringComparer.Ordinal)).ToList();
        if (bad.Count > 0 || dims.Length == 0 || dims.Distinct(StringComparer.Ordinal).Count() != dims.Length)
        {
            p.Error("by", $"must be a comma-separated, non-repeating list of: {string.Join(", ", Dimensions)}" + (bad.Count > 0 ? $" (unknown: {string.Join(", ", bad)})." : "."));
        }

        var m = p.OneOf("metric", metric, Metrics) ?? "alarms";
        var minimum = p.Int("minCount", minCount, options.Value.SignalMinimumCount, 1, 1_000_000);
        if (p.HasErrors)
        {
            return p.Problem();
        }

        // Keep the canonical order so the SQL is one of a few fixed shapes.
        var ordered = Dimensions.Where(d => dims.Contains(d, StringComparer.Ordinal)).ToList();
        var rows = await queries.CohortsAsync(ordered, ct);
        long CountOf((string?[] Key, long Pumps, double PumpDays, long Alarms, long CriticalAlarms, long Anomalies) r) =>
            m switch { "critical-alarms" => r.CriticalAlarms, "anomalies" => r.Anomalies, _ => r.Alarms };

        var fleetDays = rows.Sum(r => r.PumpDays);
        var fleetCount = rows.Sum(CountOf);
        var items = rows.Select(r =>
        {
            var count = CountOf(r);
            double? rate = null, lower = null, upper = null, rest = null;
            if (r.PumpDays > 0)
            {
                var ci = PoissonInterval.For(count);
                rate = count / r.PumpDays * 1000;
                lower = ci.Lower / r.PumpDays * 1000;
                upper = ci.Upper / r.PumpDays * 1000;
            }

            var restDays = fleetDays - r.PumpDays;
            if (restDays > 0)
            {
                rest = (fleetCount - count) / restDays * 1000;
            }

            // A signal: the cohort's lower 95 % bound is above the rest of the fleet's rate, with enough events to mean something.
            var signal = count >= minimum && lower is { } lo && rest is { } rr && lo > rr;
            string? Part(string dim) => ordered.IndexOf(dim) is var i and >= 0 ? r.Key[i] : null;
            return new CohortItem(Part("model"), Part("firmware"), Part("lot"), r.Pumps, Math.Round(r.PumpDays, 3), r.Alarms, r.CriticalAlarms, r.Anomalies,
                m, count, Round(rate), Round(lower), Round(upper), Round(rest), signal);
        }).ToList();
        return TypedResults.Ok(new CohortReport(ordered, m, minimum, Math.Round(fleetDays, 3), fleetCount,
            fleetDays > 0 ? Round(fleetCount / fleetDays * 1000) : null, items));
    }

    private static double? Round(double? v) => v is { } x ? Math.Round(x, 4) : null;
}
