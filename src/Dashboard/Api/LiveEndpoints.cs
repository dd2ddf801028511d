using System.Security.Claims;
using PumpFleet.Dashboard.Caching;
using PumpFleet.Dashboard.Live;
using PumpFleet.ReadModels;

namespace PumpFleet.Dashboard.Api;

/// <summary>
/// <c>GET /api/live</c>: Server-Sent Events from the process's one <see cref="LiveFeed"/>. <c>fleet</c> carries the fleet
/// summary at once and again whenever a projection applied new events (pages re-read the API); <c>anomaly</c> and
/// <c>pump</c> are pushed from the log stream as events commit. A missed message costs nothing: a reconnecting
/// browser gets the current summary and re-reads what it shows.
/// </summary>
internal static class LiveEndpoints
{
    public static RouteGroupBuilder MapLiveEndpoints(this RouteGroupBuilder api)
    {
        api.MapGet("/fleet/summary", (IReadModelQueries q, SharedReadCache cache, ClaimsPrincipal user, CancellationToken ct) =>
                cache.GetAsync(ReadKey.For("summary", user), q.FleetSummaryAsync, ct)).WithName("FleetSummary")
            .WithSummary("Counts by status, open anomalies, active critical alarms");
        api.MapGet("/live", (LiveFeed feed, CancellationToken ct) => TypedResults.ServerSentEvents(feed.ConnectAsync(ct)))
            .WithName("Live").WithSummary("Server-Sent Events: 'fleet' (fleet summary on read-model change), 'anomaly' and 'pump' (pushed from the log stream)")
            .ExcludeFromDescription();
        return api;
    }
}
