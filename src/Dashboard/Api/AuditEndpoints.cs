using PumpFleet.Dashboard.Auth;
using PumpFleet.EventStore.Audit;
using PumpFleet.Gateway.Hosting;

namespace PumpFleet.Dashboard.Api;

/// <summary>The audit trail over HTTP: the filter that records reads and writes, and <c>GET /api/audit</c> (admin).</summary>
internal static class AuditEndpoints
{
    /// <summary>
    /// Records the request in the audit trail once the handler has produced its result and before the result is
    /// written: when the trail cannot take the entry, the request fails and nothing is returned unaudited.
    /// </summary>
    public static TBuilder Audited<TBuilder>(this TBuilder builder, string action)
        where TBuilder : IEndpointConventionBuilder =>
        builder.AddEndpointFilter(async (context, next) =>
        {
            var result = await next(context);
            var http = context.HttpContext;
            var status = result switch
            {
                IStatusCodeHttpResult { StatusCode: { } code } => code,
                _ => StatusCodes.Status200OK,
            };
            var route = http.Request.RouteValues;
            var target = (route.TryGetValue("serial", out var s) ? s : route.TryGetValue("id", out var i) ? i : route.TryGetValue("name", out var n) ? n : null)
                ?.ToString();
            var detail = http.Request.Query.Count == 0 ? null
                : http.Request.Query.ToDictionary(q => q.Key, q => (string?)q.Value.ToString(), StringComparer.Ordinal);
            await http.RequestServices.GetRequiredService<AuditLog>().WriteAsync(
                new AuditEntry(HubAdminApi.Actor(http.User), action, target, status, HubAdminApi.Remote(http), detail), http.RequestAborted);
            return result;
        });

    public static RouteGroupBuilder MapAuditEndpoints(this RouteGroupBuilder api)
    {
        api.MapGet("/audit", QueryAsync).RequireAuthorization(Roles.CanAdminister).Audited("audit.read")
            .WithName("QueryAudit").WithSummary("The audit trail, newest first (admin): who did or read what, when, from where")
            .Produces<IReadOnlyList<AuditRecord>>().ProducesValidationProblem();
        return api;
    }

    private static async Task<IResult> QueryAsync(
        AuditLog audit, CancellationToken ct, string? actor = null, string? action = null, string? target = null, string? from = null,
        string? to = null, string? beforeId = null, string? limit = null)
    {
        var p = new QueryParameters();
        var take = p.Int("limit", limit, 100, 1, 1000);
        var fromTime = p.Time("from", from);
        var toTime = p.Time("to", to);
        var before = string.IsNullOrEmpty(beforeId) ? (long?)null : p.Long("beforeId", beforeId, long.MaxValue, 1);
        var who = p.Text("actor", actor, 200);
        var what = p.Text("action", action, 64);
        var which = p.Text("target", target, 200);
        if (p.HasErrors)
        {
            return p.Problem();
        }

        return TypedResults.Ok(await audit.QueryAsync(new AuditQuery(Blank(who), Blank(what), Blank(which), fromTime, toTime, before, take), ct));
    }

    private static string? Blank(string? s) => string.IsNullOrWhiteSpace(s) ? null : s;
}
