using PumpFleet.Domain.Detection;
using PumpFleet.Gateway.Hubs;
using PumpFleet.ReadModels;
using Microsoft.Extensions.Options;

namespace PumpFleet.Dashboard.Api;

/// <summary>
/// <c>GET /api/fleet/overview</c>: the fleet page's charts, aggregated on the server from the read models and kept for
/// a minute, so a room full of open fleet pages costs one set of grouped queries a minute, not one per browser.
/// </summary>
internal static class OverviewEndpoints
{
    /// <summary>How long an aggregate is served before it is recomputed.</summary>
    public static readonly TimeSpan CacheFor = TimeSpan.FromMinutes(1);

    public static RouteGroupBuilder MapOverviewEndpoints(this RouteGroupBuilder api)
    {
        api.MapGet("/fleet/overview", GetAsync).WithName("FleetOverview")
            .WithSummary("Fleet charts: open anomalies by kind per day, device events and pumps reporting per day, refill-due distribution, silent pumps")
            .Produces<OverviewResponse>().ProducesValidationProblem();
        return api;
    }

    private static async Task<IResult> GetAsync(IReadModelQueries queries, HubStore hubs, TimeProvider time, OverviewCache cache, IOptions<AnomalyDetectionOptions> detection,
        CancellationToken ct, string? days = null, string? clinicId = null)
    {
        var p = new QueryParameters();
        var n = p.Int("days", days, 30, 1, 90);
        var (clinicHubs, clinic) = await ClinicEndpoints.ResolveAsync(p, hubs, clinicId, ct);
        if (p.HasErrors)
        {
            return p.Problem();
        }

        var now = time.GetUtcNow();
        if (cache.Get((n, clinic?.ClinicId), now) is { } hit)
        {
            return TypedResults.Ok(hit);
        }

        var o = await queries.FleetOverviewAsync(now, n, detection.Value.SilentWindow, ct, clinicHubs);
        var response = new OverviewResponse(o.Now, [.. o.Days.Select(d => d.ToString("yyyy-MM-dd", System.Globalization.CultureInfo.InvariantCulture))],
            [.. o.OpenAnomaliesByKind.Select(k => new KindSeries(k.Key, k.Value))], o.PumpsReportingByDay,
            [.. o.RefillDue.Select(b => new Bucket(b.Bucket, b.Pumps))], o.SilentPumps, detection.Value.SilentWindow.TotalHours, clinic?.ClinicId, clinic?.Name, o.DeviceEventsByDay);
        cache.Put((n, clinic?.ClinicId), now, response);
        return TypedResults.Ok(response);
    }
}

/// <summary>The last overview per look-ahead and clinic (a handful of clinics: the map stays small), served for <see cref="OverviewEndpoints.CacheFor"/>.</summary>
internal sealed class OverviewCache
{
    private readonly Lock _lock = new();
    private readonly Dictionary<(int Days, string? ClinicId), (DateTimeOffset At, OverviewResponse Value)> _entries = [];

    public OverviewResponse? Get((int Days, string? ClinicId) days, DateTimeOffset now)
    {
        lock (_lock)
        {
            return _entries.TryGetValue(days, out var e) && now - e.At < OverviewEndpoints.CacheFor && now >= e.At ? e.Value : null;
        }
    }

    public void Put((int Days, string? ClinicId) days, DateTimeOffset now, OverviewResponse value)
    {
        lock (_lock)
        {
            _entries[days] = (now, value);
        }
    }
}

/// <summary>The fleet overview.</summary>
/// <param name="PumpsReportingByDay">Pumps with any delivery reported on each day (the daily flow read model, by event day).</param>
/// <param name="DeviceEventsByDay">Device events stored per UTC day of receipt (the ingest read model); null for a clinic's overview.</param>
public sealed record OverviewResponse(
    DateTimeOffset Now, IReadOnlyList<string> Days, IReadOnlyList<KindSeries> OpenAnomaliesByKind, IReadOnlyList<long> PumpsReportingByDay,
    IReadOnlyList<Bucket> RefillDue, long SilentPumps, double SilentWindowHours, string? ClinicId = null, string? ClinicName = null,
    IReadOnlyList<long>? DeviceEventsByDay = null);

/// <summary>Anomalies of one kind open at the end of each day.</summary>
public sealed record KindSeries(string Kind, IReadOnlyList<long> Open);

/// <summary>Pumps in one refill-due bucket.</summary>
public sealed record Bucket(string Label, long Pumps);
