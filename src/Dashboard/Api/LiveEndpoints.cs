using System.Net.ServerSentEvents;
using System.Runtime.CompilerServices;
using Microsoft.Extensions.Options;
using PumpFleet.Dashboard.Hosting;
using PumpFleet.ReadModels;

namespace PumpFleet.Dashboard.Api;

/// <summary>
/// <c>GET /api/live</c>: Server-Sent Events. Sends the fleet summary at once and again whenever a projection applied
/// new events, so pages refresh what they show without a reload. A missed message costs nothing: the next one
/// carries the whole summary and the pages re-read the API.
/// </summary>
internal static class LiveEndpoints
{
    public static RouteGroupBuilder MapLiveEndpoints(this RouteGroupBuilder api)
    {
        api.MapGet("/fleet/summary", (IReadModelQueries q, CancellationToken ct) => q.FleetSummaryAsync(ct)).WithName("FleetSummary")
            .WithSummary("Counts by status, open anomalies, active critical alarms");
        api.MapGet("/live", (IReadModelQueries q, IOptions<DashboardOptions> o, CancellationToken ct) => TypedResults.ServerSentEvents(StreamAsync(q, o.Value.LiveInterval, ct)))
            .WithName("Live").WithSummary("Server-Sent Events: 'fleet' with the fleet summary whenever the read models change")
            .ExcludeFromDescription();
        return api;
    }

    private static async IAsyncEnumerable<SseItem<FleetSummary>> StreamAsync(IReadModelQueries queries, TimeSpan interval, [EnumeratorCancellation] CancellationToken ct)
    {
        string? last = null;
        using var timer = new PeriodicTimer(interval);
        do
        {
            var version = await queries.VersionAsync(ct);
            if (version != last)
            {
                last = version;
                yield return new SseItem<FleetSummary>(await queries.FleetSummaryAsync(ct), "fleet");
            }
        }
        while (await timer.WaitForNextTickAsync(ct));
    }
}
