using System.Security.Claims;
using PumpFleet.Contracts.Grains;
using PumpFleet.Dashboard.Caching;
using PumpFleet.Dashboard.Auth;
using PumpFleet.ReadModels;

namespace PumpFleet.Dashboard.Api;

/// <summary><c>/api/anomalies…</c> and <c>/api/alarms</c>.</summary>
internal static class AnomalyEndpoints
{
    private static readonly string[] AnomalyStatuses = ["open", "acknowledged", "resolved", "active", "all"];
    private static readonly string[] Severities = ["critical", "warning", "info"];
    private static readonly string[] AlarmSeverities = ["critical", "non-critical"];

    public static RouteGroupBuilder MapAnomalyEndpoints(this RouteGroupBuilder api)
    {
        api.MapGet("/anomalies", ListAsync).WithName("ListAnomalies")
            .WithSummary("Platform-detected anomalies; status open (default), acknowledged, resolved, active (open or acknowledged) or all")
            .Produces<IReadOnlyList<AnomalyItem>>().ProducesValidationProblem();
        api.MapPost("/anomalies/{id}/acknowledge", (string id, AnomalyActionRequest? body, IReadModelQueries q, IGrainFactory g, ClaimsPrincipal user, CancellationToken ct)
                => ActAsync(id, body, q, g, user, acknowledge: true, ct))
            .WithName("AcknowledgeAnomaly").WithSummary("Acknowledge an open anomaly (recorded as an event with who and when)")
            .RequireAuthorization(Roles.CanTriage).Audited("anomaly.acknowledge")
            .Produces<AnomalyActionResult>().ProducesValidationProblem().ProducesProblem(StatusCodes.Status404NotFound).ProducesProblem(StatusCodes.Status409Conflict);
        api.MapPost("/anomalies/{id}/resolve", (string id, AnomalyActionRequest? body, IReadModelQueries q, IGrainFactory g, ClaimsPrincipal user, CancellationToken ct)
                => ActAsync(id, body, q, g, user, acknowledge: false, ct))
            .WithName("ResolveAnomaly").WithSummary("Resolve an open or acknowledged anomaly (recorded as an event with who and when)")
            .RequireAuthorization(Roles.CanTriage).Audited("anomaly.resolve")
            .Produces<AnomalyActionResult>().ProducesValidationProblem().ProducesProblem(StatusCodes.Status404NotFound).ProducesProblem(StatusCodes.Status409Conflict);
        api.MapGet("/alarms", AlarmsAsync).WithName("ListAlarms").WithSummary("Alarm log across the fleet; active=true (default) for alarms not cleared")
            .Produces<IReadOnlyList<AlarmItem>>().ProducesValidationProblem();
        return api;
    }

    private static async Task<IResult> ListAsync(
        IReadModelQueries queries, SharedReadCache cache, ClaimsPrincipal user, CancellationToken ct, string? status = null, string? kind = null, string? severity = null, string? serial = null, string? limit = null)
    {
        var p = new QueryParameters();
        var s = p.OneOf("status", status, AnomalyStatuses) ?? "open";
        var k = p.Text("kind", kind);
        var sev = p.OneOf("severity", severity, Severities);
        var ser = p.Text("serial", serial);
        var max = p.Int("limit", limit, 500, 1, 5000);
        if (p.HasErrors)
        {
            return p.Problem();
        }

        return TypedResults.Ok(await cache.GetAsync(ReadKey.For("anomalies", user, s, k, sev, ser, max), async c =>
        {
            if (s == "active")
            {
                var open = await queries.ListAnomaliesAsync("open", k, sev, ser, max, c);
                var acknowledged = await queries.ListAnomaliesAsync("acknowledged", k, sev, ser, max, c);
                return (IReadOnlyList<AnomalyItem>)[.. open.Concat(acknowledged).Take(max)];
            }

            return await queries.ListAnomaliesAsync(s == "all" ? null : s, k, sev, ser, max, c);
        }, ct));
    }

    private static async Task<IResult> ActAsync(
        string id, AnomalyActionRequest? body, IReadModelQueries queries, IGrainFactory grains, ClaimsPrincipal user, bool acknowledge, CancellationToken ct)
    {
        if (id.Length is 0 or > 200)
        {
            var p = new QueryParameters();
            p.Error("id", "must be 1 to 200 characters.");
            return p.Problem();
        }

        if (body?.Note is { Length: > 2000 })
        {
            return TypedResults.ValidationProblem(new Dictionary<string, string[]> { ["note"] = ["must be at most 2000 characters."] }, title: "Invalid body");
        }

        var anomaly = await queries.GetAnomalyAsync(id, ct);
        if (anomaly is null)
        {
            return TypedResults.Problem(title: "Unknown anomaly", detail: $"No anomaly '{id}'.", statusCode: StatusCodes.Status404NotFound);
        }

        var closed = acknowledge ? anomaly.Status != "open" : anomaly.Status == "resolved";
        var by = user.Identity?.Name ?? "unknown";
        var grain = grains.GetGrain<IPumpAnomalyGrain>(anomaly.Serial);
        if (closed || !(acknowledge ? await grain.AcknowledgeAnomalyAsync(id, by, body?.Note) : await grain.ResolveAnomalyAsync(id, by, body?.Note)))
        {
            return TypedResults.Problem(title: "Anomaly not open",
                detail: acknowledge ? $"Anomaly '{id}' is {anomaly.Status}: only an open anomaly can be acknowledged." : $"Anomaly '{id}' is already resolved.",
                statusCode: StatusCodes.Status409Conflict);
        }

        return TypedResults.Ok(new AnomalyActionResult(id, anomaly.Serial, acknowledge ? "acknowledged" : "resolved", by, body?.Note));
    }

    private static async Task<IResult> AlarmsAsync(
        IReadModelQueries queries, SharedReadCache cache, ClaimsPrincipal user, CancellationToken ct, string? active = null, string? severity = null, string? limit = null)
    {
        var p = new QueryParameters();
        var act = p.OneOf("active", active, ["true", "false"]) ?? "true";
        var sev = p.OneOf("severity", severity, AlarmSeverities);
        var max = p.Int("limit", limit, 500, 1, 5000);
        if (p.HasErrors)
        {
            return p.Problem();
        }

        return TypedResults.Ok(await cache.GetAsync(ReadKey.For("alarms", user, act, sev, max), c => queries.ListAlarmsAsync(null, act == "true", sev, max, c), ct));
    }
}
