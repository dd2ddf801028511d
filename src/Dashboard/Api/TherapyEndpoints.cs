using System.Globalization;
using System.Security.Claims;
using PumpFleet.Contracts.Grains;
using PumpFleet.Contracts.Views;
using PumpFleet.Dashboard.Caching;
using PumpFleet.Dashboard.Auth;
using PumpFleet.Domain.Therapies;
using PumpFleet.ReadModels;

namespace PumpFleet.Dashboard.Api;

/// <summary>
/// <c>/api/therapies…</c> (docs/api.md): clinicians' commands on a therapy, each decided by the therapy's grain with
/// the rules of <c>Domain/Therapies</c> and audited like every write; the timeline across the therapy's pumps.
/// </summary>
internal static class TherapyEndpoints
{
    private static readonly string[] Phases =
    [
        TherapyPhaseNames.Opened, TherapyPhaseNames.TrialSingleDose, TherapyPhaseNames.TrialMultiDose, TherapyPhaseNames.TrialContinuous,
        TherapyPhaseNames.NotProceeding, TherapyPhaseNames.Implanted, TherapyPhaseNames.Explanted,
    ];

    // Items per pump read for a timeline; a pump with more shows its first ones (refills oldest first; alarms and anomalies newest first).
    private const int PerPumpLimit = 1000;

    public static RouteGroupBuilder MapTherapyEndpoints(this RouteGroupBuilder api)
    {
        api.MapGet("/therapies", ListAsync).WithName("ListTherapies").WithSummary("Therapies, optionally of one phase, newest first")
            .Produces<IReadOnlyList<TherapySummary>>().ProducesValidationProblem().Audited("therapy.list");
        api.MapGet("/therapies/{id}", GetAsync).WithName("GetTherapy")
            .WithSummary("A therapy and its timeline across pumps: trial, response, decision, implant, refills, alarms and anomalies of each pump while implanted, replacement, explant")
            .Produces<TherapyDetail>().ProducesValidationProblem().ProducesProblem(StatusCodes.Status404NotFound).Audited("therapy.read");
        foreach (var action in TherapyDecisions.Actions)
        {
            api.MapPost($"/therapies/{{id}}/{action}", (string id, TherapyCommandRequest? body, IGrainFactory g, IReadModelQueries q, ClaimsPrincipal user, CancellationToken ct)
                    => ExecuteAsync(id, action, body, g, q, user, ct))
                .WithName("Therapy" + CultureInfo.InvariantCulture.TextInfo.ToTitleCase(action)).WithSummary(Summary(action))
                .RequireAuthorization(Roles.CanTriage).Audited("therapy." + action)
                .Produces<TherapyView>().ProducesValidationProblem().ProducesProblem(StatusCodes.Status404NotFound).ProducesProblem(StatusCodes.Status409Conflict);
        }

        return api;
    }

    private static string Summary(string action) => action switch
    {
        "open" => "Register a therapy under the clinic's pseudonymous id (never a name); body: indication?, at?, note?",
        "trial" => "Record the screening trial; body: kind (single-dose, multi-dose, continuous), drug?, doses?, externalPump (continuous), at?, endedAt?, note?",
        "response" => "Record the trial's response; body: painBefore, painAfter (0–10 NRS), at?, note?",
        "decision" => "Record the decision after the trial; body: proceed (true/false), at?, note?",
        "implant" => "Record the implant of a pump after a decision to proceed; body: serial, at?, note?",
        "replace" => "Replace the implanted pump: its explant (reason replacement) and the new pump's implant; body: serial (the new pump), at?, note?",
        _ => "Record the explant of the implanted pump, which ends the therapy; body: reason, serial?, at?, note?",
    };

    private static async Task<IResult> ExecuteAsync(
        string id, string action, TherapyCommandRequest? body, IGrainFactory grains, IReadModelQueries queries, ClaimsPrincipal user, CancellationToken ct)
    {
        if (TherapyIds.Check(id) is { } idError)
        {
            return TypedResults.ValidationProblem(new Dictionary<string, string[]> { ["id"] = [idError] }, title: "Invalid therapy id");
        }

        body ??= new TherapyCommandRequest();
        if (action is "implant" or "replace" && body.Serial is { } serial && QueryParameters.IsIdentifier(serial)
            && await queries.GetPumpTherapyAsync(serial, ct) is { } other && other.TherapyId != id)
        {
            // A pump belongs to one patient's therapy. The therapy grain's implant claim decides at write time; this read
            // model check also covers pumps implanted before the claims existed (they hold none).
            return TypedResults.Problem(title: "Pump belongs to another therapy",
                detail: $"Pump {serial} was implanted in another therapy ({other.TherapyId}).", statusCode: StatusCodes.Status409Conflict);
        }

        var result = await grains.GetGrain<ITherapyGrain>(id).ExecuteAsync(new TherapyCommand
        {
            Action = action, By = user.Identity?.Name ?? "unknown", At = body.At, Note = body.Note, Indication = body.Indication,
            TrialKind = body.Kind, Drug = body.Drug, Doses = body.Doses, ExternalPump = body.ExternalPump, EndedAt = body.EndedAt,
            PainBefore = body.PainBefore, PainAfter = body.PainAfter, Proceed = body.Proceed, Serial = body.Serial, Reason = body.Reason,
        });
        return result.Error switch
        {
            null when action == "open" => TypedResults.Created($"/api/therapies/{id}", result.Therapy),
            null => TypedResults.Ok(result.Therapy),
            TherapyDecision.Invalid => TypedResults.ValidationProblem(new Dictionary<string, string[]> { [result.Field ?? "body"] = [result.Reason ?? "invalid"] },
                title: "Invalid therapy command"),
            TherapyDecision.NotFound => TypedResults.Problem(title: "Unknown therapy", detail: result.Reason, statusCode: StatusCodes.Status404NotFound),
            TherapyDecision.Conflict when result.Field == "serial" =>
                TypedResults.Problem(title: "Pump belongs to another therapy", detail: result.Reason, statusCode: StatusCodes.Status409Conflict),
            _ => TypedResults.Problem(title: "Not allowed in the therapy's state", detail: result.Reason, statusCode: StatusCodes.Status409Conflict),
        };
    }

    private static async Task<IResult> ListAsync(
        IReadModelQueries queries, SharedReadCache cache, ClaimsPrincipal user, CancellationToken ct, string? phase = null, string? limit = null)
    {
        var p = new QueryParameters();
        var ph = p.OneOf("phase", phase, Phases);
        var max = p.Int("limit", limit, 200, 1, 1000);
        if (p.HasErrors)
        {
            return p.Problem();
        }

        return TypedResults.Ok(await cache.GetAsync(ReadKey.For("therapies", user, ph, max), c => queries.ListTherapiesAsync(ph, max, c), ct));
    }

    private static async Task<IResult> GetAsync(string id, IGrainFactory grains, IReadModelQueries queries, CancellationToken ct)
    {
        if (TherapyIds.Check(id) is { } idError)
        {
            return TypedResults.ValidationProblem(new Dictionary<string, string[]> { ["id"] = [idError] }, title: "Invalid therapy id");
        }

        var therapy = await grains.GetGrain<ITherapyGrain>(id).GetAsync();
        if (therapy.Version == 0)
        {
            return TypedResults.Problem(title: "Unknown therapy", detail: $"No therapy '{id}'.", statusCode: StatusCodes.Status404NotFound);
        }

        var items = new List<TimelineEntry>();
        foreach (var pump in therapy.Pumps)
        {
            var to = pump.ExplantedAt ?? DateTimeOffset.MaxValue;
            foreach (var r in await queries.ListRefillsAsync(pump.Serial, pump.ImplantedAt, to, PerPumpLimit, ct))
            {
                items.Add(new TimelineEntry
                {
                    At = r.At, Kind = "refill", Serial = r.Serial,
                    Summary = string.Create(CultureInfo.InvariantCulture,
                        $"Refill of {r.Serial}: {r.AddedMl:0.##} mL {r.Drug} {r.Concentration:0.###} {r.ConcentrationUnit} (residual expected {r.ExpectedResidualMl:0.##} mL, aspirated {r.AspiratedResidualMl:0.##} mL)"),
                    Details = new Dictionary<string, string>(StringComparer.Ordinal)
                    {
                        ["seq"] = r.Seq.ToString(CultureInfo.InvariantCulture), ["drug"] = r.Drug,
                        ["concentration"] = r.Concentration.ToString(CultureInfo.InvariantCulture), ["concentrationUnit"] = r.ConcentrationUnit,
                        ["addedMl"] = r.AddedMl.ToString(CultureInfo.InvariantCulture),
                        ["expectedResidualMl"] = r.ExpectedResidualMl.ToString(CultureInfo.InvariantCulture),
                        ["aspiratedResidualMl"] = r.AspiratedResidualMl.ToString(CultureInfo.InvariantCulture),
                    },
                });
            }

            foreach (var a in await queries.ListAlarmsAsync(pump.Serial, false, null, PerPumpLimit, ct))
            {
                items.Add(new TimelineEntry
                {
                    At = a.RaisedAt, Kind = "alarm", Serial = a.Serial, Severity = a.Severity,
                    Summary = $"Alarm {a.Code} on {a.Serial}" + (a.ClearedAt is { } c ? string.Create(CultureInfo.InvariantCulture, $" (cleared {c:yyyy-MM-dd HH:mm} UTC)") : " (not cleared)"),
                    Details = new Dictionary<string, string>(StringComparer.Ordinal) { ["code"] = a.Code, ["seq"] = a.Seq.ToString(CultureInfo.InvariantCulture) },
                });
            }

            foreach (var a in await queries.ListAnomaliesAsync(null, null, null, pump.Serial, PerPumpLimit, ct))
            {
                items.Add(new TimelineEntry
                {
                    At = a.DetectedAt, Kind = "anomaly", Serial = a.Serial, Severity = a.Severity, Summary = $"{a.Kind}: {a.Summary}",
                    Details = new Dictionary<string, string>(StringComparer.Ordinal) { ["id"] = a.Id, ["kind"] = a.Kind, ["status"] = a.Status },
                });
            }
        }

        return TypedResults.Ok(new TherapyDetail(therapy.Id, therapy.Phase, therapy.Indication, therapy.OpenedAt, therapy.CurrentSerial, therapy.ImplantedAt,
            therapy.EndedAt, therapy.Pumps, TherapyTimeline.Build(therapy, items), therapy.Version));
    }
}

/// <summary>Body of the therapy commands: each action reads the fields it needs (docs/api.md) and refuses wrong ones.</summary>
public sealed record TherapyCommandRequest
{
    /// <summary>Clinical time of the act (default: now).</summary>
    public DateTimeOffset? At { get; init; }
    public string? Note { get; init; }
    public string? Indication { get; init; }
    /// <summary>Trial kind: single-dose, multi-dose or continuous.</summary>
    public string? Kind { get; init; }
    public string? Drug { get; init; }
    public int? Doses { get; init; }
    public string? ExternalPump { get; init; }
    public DateTimeOffset? EndedAt { get; init; }
    public int? PainBefore { get; init; }
    public int? PainAfter { get; init; }
    public bool? Proceed { get; init; }
    public string? Serial { get; init; }
    public string? Reason { get; init; }
}

/// <summary><c>GET /api/therapies/{id}</c>: the therapy and its ordered timeline across its pumps.</summary>
public sealed record TherapyDetail(
    string Id, string? Phase, string? Indication, DateTimeOffset? OpenedAt, string? CurrentSerial, DateTimeOffset? ImplantedAt, DateTimeOffset? EndedAt,
    IReadOnlyList<TherapyPumpView> Pumps, IReadOnlyList<TimelineEntry> Timeline, long Version);
