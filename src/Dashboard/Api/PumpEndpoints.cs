using System.Text.Json.Nodes;
using PumpFleet.Contracts.Grains;
using PumpFleet.Contracts.Views;
using PumpFleet.Dashboard.Caching;
using PumpFleet.Dashboard.Hosting;
using PumpFleet.EventStore;
using PumpFleet.Gateway.Hubs;
using Microsoft.Extensions.Options;
using PumpFleet.ReadModels;

namespace PumpFleet.Dashboard.Api;

/// <summary><c>/api/pumps…</c> (protocol.md §2).</summary>
internal static class PumpEndpoints
{
    private static readonly string[] Statuses =
        [PumpStatuses.Critical, PumpStatuses.Attention, PumpStatuses.Stopped, PumpStatuses.Ok, PumpStatuses.Unknown, PumpStatuses.Inactive];

    private static readonly string[] Buckets = ["day", "week"];
    private static readonly string[] Directions = ["asc", "desc"];

    public static RouteGroupBuilder MapPumpEndpoints(this RouteGroupBuilder api)
    {
        api.MapGet("/pumps", ListAsync).WithName("ListPumps").WithSummary("Page of pump summaries (read model), filtered and sorted")
            .Produces<PagedResult<PumpSummary>>().ProducesValidationProblem();
        api.MapGet("/pumps/facets", (IReadModelQueries q, SharedReadCache cache, System.Security.Claims.ClaimsPrincipal user, CancellationToken ct) =>
                cache.GetAsync(ReadKey.For("facets", user), q.FacetsAsync, ct)).WithName("PumpFacets")
            .WithSummary("Known models, firmware versions and lots");
        api.MapGet("/pumps/{serial}", GetAsync).WithName("GetPump").WithSummary("The pump's current state, or its state as of a time")
            .Produces<PumpView>().ProducesValidationProblem().ProducesProblem(StatusCodes.Status404NotFound)
            .Audited("pump.read");
        api.MapGet("/pumps/{serial}/events", EventsAsync).WithName("GetPumpEvents").WithSummary("Stored events in seq order, as received plus receivedAt and clockSuspect")
            .Produces<JsonArray>().ProducesValidationProblem().Audited("pump.events.read");
        api.MapGet("/pumps/{serial}/flow", FlowAsync).WithName("GetPumpFlow").WithSummary("Programmed, delivered and measured flow (mL/day) and reservoir level")
            .Produces<FlowSeries>().ProducesValidationProblem().Audited("pump.flow.read");
        api.MapGet("/pumps/{serial}/alarms", AlarmsAsync).WithName("GetPumpAlarms").WithSummary("The pump's alarm log, newest first")
            .Produces<IReadOnlyList<AlarmItem>>().ProducesValidationProblem().Audited("pump.alarms.read");
        return api;
    }

    private static async Task<IResult> ListAsync(
        IReadModelQueries queries, IOptions<DashboardOptions> options, SharedReadCache cache, System.Security.Claims.ClaimsPrincipal user, CancellationToken ct,
        string? status = null, string? model = null, string? firmware = null, string? lot = null, string? q = null,
        string? page = null, string? pageSize = null, string? sort = null, string? dir = null)
    {
        var p = new QueryParameters();
        var filter = new PumpFilter(p.OneOf("status", status, Statuses), p.Text("model", model), p.Text("firmware", firmware), p.Text("lot", lot), p.Text("q", q));
        var pageNo = p.Int("page", page, 1, 1, 1_000_000);
        var size = p.Int("pageSize", pageSize, 50, 1, options.Value.MaxPageSize);
        var sortKey = p.OneOf("sort", sort, [.. queries.PumpSortKeys]) ?? "attention";
        var direction = p.OneOf("dir", dir, Directions) ?? "asc";
        if (p.HasErrors)
        {
            return p.Problem();
        }

        var key = ReadKey.For("pumps", user, filter.Status, filter.Model, filter.Firmware, filter.Lot, filter.Search, sortKey, direction, pageNo, size);
        return TypedResults.Ok(await cache.GetAsync(key, c => queries.ListPumpsAsync(filter, sortKey, direction == "desc", pageNo, size, c), ct));
    }

    private static async Task<IResult> GetAsync(string serial, IGrainFactory grains, IEventReader store, ISnapshotStore snapshots, IReadModelQueries queries, HubStore hubs,
        CancellationToken ct, string? asOf = null)
    {
        var p = new QueryParameters();
        CheckSerial(p, serial);
        var at = p.Time("asOf", asOf);
        if (p.HasErrors)
        {
            return p.Problem();
        }

        // Time travel is a stateless read of the store, never a replay inside the pump's grain (which would stall its
        // ingest): the newest kept snapshot at or before the time, then only the events after it that count.
        var view = at is { } t
            ? await AsOfAsync(serial, t, store, snapshots, ct)
            : await grains.GetGrain<IPumpQueryGrain>(serial).GetStateAsync();
        if (view.Version == 0 && at is null)
        {
            return TypedResults.Problem(title: "Unknown pump", detail: $"No events are stored for pump '{serial}'.", statusCode: StatusCodes.Status404NotFound);
        }

        // The therapy is the clinic's record, not the pump's: the therapies read model finds the pump's therapy; now, its
        // phase is the read model's; as of a time, it is the therapy's stream folded up to that time (a handful of
        // events), and the pump has no therapy yet before its implant in it.
        if (await queries.GetPumpTherapyAsync(serial, ct) is { } therapy)
        {
            if (at is not { } asOfTime)
            {
                view = view with { TherapyId = therapy.TherapyId, TherapyPhase = therapy.TherapyPhase, ImplantedAt = therapy.ImplantedAt, ExplantedAt = therapy.ExplantedAt };
            }
            else if (await TherapyAsOfAsync(therapy.TherapyId, asOfTime, store, ct) is { } then
                     && then.Pumps.LastOrDefault(p => p.Serial == serial) is { } pump)
            {
                view = view with { TherapyId = therapy.TherapyId, TherapyPhase = then.Phase, ImplantedAt = pump.ImplantedAt, ExplantedAt = pump.ExplantedAt };
            }
        }

        // The clinic is the hub registry's: the clinic the pump's hub (then, for an as-of view) stands in now.
        if (view.HubId is { } hubId && await hubs.ClinicOfHubAsync(hubId, ct) is { } clinic)
        {
            view = view with { ClinicId = clinic.ClinicId, ClinicName = clinic.Name };
        }

        // A cohort flow correction is the pump's own state (flow-correction.changed): the view carries it, as of then too.
        return TypedResults.Ok(view);
    }

    private static async Task<Domain.Therapies.TherapyState?> TherapyAsOfAsync(string therapyId, DateTimeOffset t, IEventReader store, CancellationToken ct)
    {
        var events = new List<Contracts.Events.TherapyEvent>();
        await foreach (var e in store.ReadStreamAsync(Contracts.StreamIds.Therapy(therapyId), 0, ct))
        {
            if (Contracts.Json.EventJson.Deserialize(e.Type, e.Data) is Contracts.Events.TherapyEvent te)
            {
                events.Add(te);
            }
        }

        var state = Domain.Therapies.TherapyState.AsOf(therapyId, events, t);
        return state.Exists ? state : null;
    }

    private static async Task<Contracts.Views.PumpView> AsOfAsync(string serial, DateTimeOffset t, IEventReader store, ISnapshotStore snapshots, CancellationToken ct)
    {
        var snapshot = await snapshots.LoadSnapshotAsOfAsync(serial, t, Domain.Pumps.PumpState.SchemaVersion, ct);
        var from = snapshot?.Version ?? 0;
        var result = await Domain.Pumps.PumpAsOf.FoldFromSnapshotAsync(serial, t, snapshot?.State, from,
            StoredStream(store.ReadStreamAsOfAsync(serial, from, t, ct), ct), () => StoredStream(store.ReadStreamAsOfAsync(serial, 0, t, ct), ct), ct);
        return result.View;
    }

    private static async IAsyncEnumerable<(Contracts.Events.PumpEvent Event, Domain.Pumps.EventEnvelope Envelope)> StoredStream(
        IAsyncEnumerable<StoredEvent> stored, [System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken ct = default)
    {
        await foreach (var s in stored.WithCancellation(ct))
        {
            yield return (Contracts.Json.EventJson.Deserialize(s.Type, s.Data), new Domain.Pumps.EventEnvelope(s.Version, s.Seq, s.ReceivedAt, s.ClockSuspect));
        }
    }

    private static async Task<IResult> EventsAsync(string serial, IEventReader store, CancellationToken ct, string? afterSeq = null, string? limit = null)
    {
        var p = new QueryParameters();
        CheckSerial(p, serial);
        var after = p.Long("afterSeq", afterSeq, 0, 0);
        var max = p.Int("limit", limit, 100, 1, 1000);
        if (p.HasErrors)
        {
            return p.Problem();
        }

        var events = await store.ReadStreamBySeqAsync(serial, after, max, ct);
        var array = new JsonArray();
        foreach (var e in events)
        {
            // The payload as stored (the hub's fields), with the protocol's "type" first and the platform's envelope after.
            var o = new JsonObject { ["seq"] = e.Seq, ["type"] = e.Type };
            if (JsonNode.Parse(e.Data) is JsonObject data)
            {
                foreach (var (k, v) in data.ToList())
                {
                    data.Remove(k);
                    if (k is not ("seq" or "type"))
                    {
                        o[k] = v;
                    }
                }
            }

            o["receivedAt"] = e.ReceivedAt.ToUniversalTime();
            o["clockSuspect"] = e.ClockSuspect;
            array.Add(o);
        }

        return TypedResults.Ok(array);
    }

    private static async Task<IResult> FlowAsync(string serial, IReadModelQueries queries, CancellationToken ct, string? from = null, string? to = null, string? bucket = null)
    {
        var p = new QueryParameters();
        CheckSerial(p, serial);
        var f = p.Date("from", from);
        var t = p.Date("to", to);
        var b = p.OneOf("bucket", bucket, Buckets) ?? "day";
        if (f is { } ff && t is { } tt && ff > tt)
        {
            p.Error("from", "must not be after 'to'.");
        }

        if (p.HasErrors)
        {
            return p.Problem();
        }

        // Without 'to', the series ends at the pump's last day with data (event time, not wall time: a replayed or
        // simulated fleet shows its own days).
        var end = t ?? await queries.LastFlowDayAsync(serial, ct) ?? DateOnly.FromDateTime(DateTime.UtcNow);
        var start = f ?? end.AddDays(-29);
        if (end.DayNumber - start.DayNumber > 3 * 366)
        {
            p.Error("from", "the range from 'from' to 'to' may span at most 3 years.");
            return p.Problem();
        }

        var rows = await queries.DailyFlowAsync(serial, start, end, ct);
        var size = b == "week" ? 7 : 1;
        var points = rows
            .GroupBy(r => size == 1 ? r.Day : start.AddDays((r.Day.DayNumber - start.DayNumber) / 7 * 7))
            .Select(g =>
            {
                var days = g.Count();
                var measuredDays = g.Where(r => r.Samples > 1).ToList();
                return new FlowPoint(g.Key, days, Math.Round(g.Sum(r => r.Programmed) / days, 6), Math.Round(g.Sum(r => r.Delivered) / days, 6),
                    measuredDays.Count == 0 ? null : Math.Round(measuredDays.Sum(r => r.Measured) / measuredDays.Count, 6),
                    g.LastOrDefault(r => r.ReservoirEnd is not null).ReservoirEnd, g.Sum(r => r.Refills));
            })
            .ToList();
        return TypedResults.Ok(new FlowSeries(serial, b, start, end, points));
    }

    private static async Task<IResult> AlarmsAsync(string serial, IReadModelQueries queries, CancellationToken ct, string? limit = null)
    {
        var p = new QueryParameters();
        CheckSerial(p, serial);
        var max = p.Int("limit", limit, 200, 1, 1000);
        if (p.HasErrors)
        {
            return p.Problem();
        }

        return TypedResults.Ok(await queries.ListAlarmsAsync(serial, false, null, max, ct));
    }

    private static void CheckSerial(QueryParameters p, string serial)
    {
        if (!QueryParameters.IsIdentifier(serial))
        {
            p.Error("serial", "must match ^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$ (protocol.md §1).");
        }
    }
}
