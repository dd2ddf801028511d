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
            .WithName("RebuildProjection").WithSummary("Empty a projection's read model and replay the log from the start, while the platform runs")
            .ProducesProblem(StatusCodes.Status404NotFound);
        return api;
    }
}
