using PumpFleet.Contracts.Events;
using PumpFleet.Contracts.Views;
using PumpFleet.Domain.Drugs;
using PumpFleet.Gateway.Hubs;
using PumpFleet.ReadModels;

namespace PumpFleet.Dashboard.Api;

/// <summary>
/// <c>GET /api/worklist</c>: the refill worklist. Pumps due for a refill in the next N days by the platform's ledger
/// (never the pump's own estimate), each with what to prepare, earliest due first. An open
/// <c>cohort-flow-deviation</c> of a pump's cohort brings its date forward: the pump holds the correction and the read
/// model stores the corrected date with its source (docs/detection.md).
/// </summary>
internal static class WorklistEndpoints
{
    /// <summary>Longest look-ahead: beyond a quarter the forecast is dominated by titrations still to come.</summary>
    public const int MaxDays = 90;

    /// <summary>Most rows returned.</summary>
    public const int MaxItems = 1000;

    public static RouteGroupBuilder MapWorklistEndpoints(this RouteGroupBuilder api)
    {
        api.MapGet("/worklist", GetAsync).WithName("RefillWorklist")
            .WithSummary("Pumps due for a refill in the next N days by the platform's ledger, with drug and volume to prepare")
            .Produces<WorklistResponse>().ProducesValidationProblem();
        return api;
    }

    private static async Task<IResult> GetAsync(IReadModelQueries queries, HubStore hubs, TimeProvider time, CancellationToken ct, string? days = null, string? hubId = null,
        string? limit = null, string? clinicId = null)
    {
        var p = new QueryParameters();
        var n = p.Int("days", days, 14, 1, MaxDays);
        var max = p.Int("limit", limit, 200, 1, MaxItems);
        if (hubId is not null && !QueryParameters.IsIdentifier(hubId))
        {
            p.Error("hubId", "must match ^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$ (protocol.md §1).");
        }

        var (clinicHubs, clinic) = await ClinicEndpoints.ResolveAsync(p, hubs, clinicId, ct);
        if (p.HasErrors)
        {
            return p.Problem();
        }

        var now = time.GetUtcNow();
        var until = now.AddDays(n);

        // The dates are stored corrected (the pump's own cohort flow correction, docs/detection.md): no correction on read.
        var rows = await queries.RefillCandidatesAsync(until, hubId, max, ct, clinicHubs);
        return TypedResults.Ok(new WorklistResponse(now, until, n, hubId, [.. rows.Select(r => Item(r, now))],
            clinic?.ClinicId, clinic?.Name, clinic?.Timezone));
    }

    private static WorklistItem Item(WorklistRow r, DateTimeOffset now)
    {
        var concentration = r.ConcentrationValue is { } v && r.ConcentrationUnit is { } u ? new Concentration { Value = v, Unit = u } : null;
        var prep = RefillPreparation.For(r.ReservoirCapacityMl, concentration);
        var due = r.NextRefillDueAt;
        var corrected = r.NextRefillDueSource == RefillDueSources.CohortFlow;
        var source = r.NextRefillDueSource switch
        {
            RefillDueSources.CohortFlow => "corrected",
            RefillDueSources.DrugRule => "drug rule",
            _ => "ledger",
        };

        // The cohort of a held correction, readable ("lot L2201"), whether or not it moved this pump's date.
        var cohort = Domain.Detection.CohortFlow.CohortKey.FromStreamId(r.FlowCohort)?.ToString();
        return new WorklistItem(r.Serial, r.HubId, r.Model, r.Lot, r.Drug, concentration, r.ReservoirCapacityMl, r.ReservoirMl, due,
            Math.Round((due - now).TotalDays, 1), source, corrected ? r.UncorrectedRefillDueAt : null, r.FlowFactor,
            cohort, r.FlowAnomalyId, prep?.FillVolumeMl, prep?.DrugAmount, prep?.AmountUnit, r.Status);
    }
}

/// <summary>The worklist: the window it covers and the pumps in it.</summary>
/// <param name="ClinicId">The clinic asked for (its hubs' pumps only), or null.</param>
/// <param name="ClinicName">That clinic's name.</param>
/// <param name="ClinicTimezone">That clinic's IANA time zone, when registered (the page shows due dates in it).</param>
public sealed record WorklistResponse(DateTimeOffset Now, DateTimeOffset Until, int Days, string? HubId, IReadOnlyList<WorklistItem> Items,
    string? ClinicId = null, string? ClinicName = null, string? ClinicTimezone = null);

/// <summary>One pump to refill.</summary>
/// <param name="DueAt">When the refill is due: the ledger's date, brought forward by a cohort flow correction, or a drug rule's.</param>
/// <param name="DaysUntilDue">Negative when overdue.</param>
/// <param name="DueSource"><c>ledger</c>, <c>corrected</c> (a cohort's flow factor) or <c>drug rule</c> (ziconotide stability).</param>
/// <param name="UncorrectedDueAt">The ledger's own date when a correction brought the date forward.</param>
/// <param name="FlowFactor">The factor of the cohort flow correction the pump holds, if any (also when it moved nothing: an under-infusing cohort's later date is never used).</param>
/// <param name="FillVolumeMl">Volume to draw up: the reservoir's capacity.</param>
/// <param name="DrugAmount">Amount of drug in it (capacity × concentration), in <paramref name="AmountUnit"/>.</param>
public sealed record WorklistItem(
    string Serial, string? HubId, string? Model, string? Lot, string? Drug, Concentration? Concentration, double? ReservoirCapacityMl,
    double? ReservoirMl, DateTimeOffset DueAt, double DaysUntilDue, string DueSource, DateTimeOffset? UncorrectedDueAt, double? FlowFactor,
    string? FlowCohort, string? FlowAnomalyId, double? FillVolumeMl, double? DrugAmount, string? AmountUnit, string Status);
