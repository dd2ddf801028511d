using PumpFleet.Dashboard.Auth;
using PumpFleet.Projections;
using PumpFleet.ReadModels;

namespace PumpFleet.Dashboard.Api;

/// <summary><c>/api/admin…</c>: operations on the projections (admin role).</summary>
internal static class AdminEndpoints
{
    public static RouteGroupBuilder MapAdminEndpoints(this RouteGroupBuilder api)
    {
        var admin = api.MapGroup("/admin").RequireAuthorization(Roles.CanAdminister);
        admin.MapGet("/projections", async (IReadModelQueries q, ProjectionRebuilder rebuilder, CancellationToken ct) =>
                TypedResults.Ok(new { names = rebuilder.Names.Order(StringComparer.Ordinal), partitions = await q.ProjectionProgressAsync(ct) }))
            .WithName("ListProjections").WithSummary("Projections and the progress of each partition");
        admin.MapPost("/projections/{name}/rebuild", async (string name, ProjectionRebuilder rebuilder, CancellationToken ct) =>
            {
                if (!rebuilder.Exists(name))
                {
                    return (IResult)TypedResults.Problem(title: "Unknown projection",
                        detail: $"No projection '{name}'. Known: {string.Join(", ", rebuilder.Names)}.", statusCode: StatusCodes.Status404NotFound);
                }

                await rebuilder.RebuildAsync(name, ct);
                return TypedResults.Accepted($"/api/admin/projections", new { name, status = "rebuilding" });
            })
            .Audited("projection.rebuild")
            .WithName("RebuildProjection").WithSummary("Empty a projection's read model and replay the log from the start, while the platform runs")
            .ProducesProblem(StatusCodes.Status404NotFound);
        admin.MapGet("/projections/parked", async (ParkedEventStore parked, bool? all, CancellationToken ct) =>
                TypedResults.Ok(new { parked = await parked.ListAsync(all ?? false, ct) }))
            .WithName("ListParkedEvents").WithSummary("Events a projection kept failing on and parked (newest first; all=true includes those a retry applied)");
        admin.MapPost("/projections/parked/{id:long}/retry", async (long id, ParkedEventStore parked, System.Security.Claims.ClaimsPrincipal user, CancellationToken ct) =>
            {
                if (!await parked.RequestRetryAsync(id, $"api:{user.Identity?.Name ?? "unknown"}", ct))
                {
                    return (IResult)TypedResults.Problem(title: "No such parked event",
                        detail: $"No event {id} is parked (unknown, already applied, or a retry is already pending).", statusCode: StatusCodes.Status404NotFound);
                }

                return TypedResults.Accepted("/api/admin/projections/parked", new { id, status = "retry" });
            })
            .Audited("projection.parked.retry")
            .WithName("RetryParkedEvent").WithSummary("Ask the worker owning the event's partition to apply a parked event again (after the cause was fixed)")
            .ProducesProblem(StatusCodes.Status404NotFound);
        return api;
    }
}
