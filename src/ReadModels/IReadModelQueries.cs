using PumpFleet.Projections;

namespace PumpFleet.ReadModels;

/// <summary>Filters of the fleet list.</summary>
public sealed record PumpFilter(string? Status, string? Model, string? Firmware, string? Lot, string? Search);

/// <summary>
/// What the API may ask of the read models. The read models' owner (this project) answers; callers name no table.
/// </summary>
public interface IReadModelQueries
{
    /// <summary>
    /// The refill worklist: pumps not explanted whose refill-due date (<c>next_refill_due_at</c>: the ledger's, a drug
    /// rule's, or brought forward by the pump's cohort flow correction, with its source) is at or before
    /// <paramref name="until"/> (overdue included), optionally on one hub and on the hubs of <paramref name="hubIds"/>
    /// (a clinic's; null: any hub), earliest due first, then by serial; at most <paramref name="limit"/>.
    /// </summary>
    Task<IReadOnlyList<WorklistRow>> RefillCandidatesAsync(
        DateTimeOffset until, string? hubId, int limit, CancellationToken ct, IReadOnlyList<string>? hubIds = null);

    /// <summary>
    /// The fleet overview's aggregates (one round trip of four grouped queries): anomalies open at the end of each of the
    /// <paramref name="days"/> UTC days up to <paramref name="now"/> by kind, pumps reporting per day (rows of the daily
    /// flow), pumps by refill-due bucket, and pumps not heard from for more than <paramref name="silentAfter"/>. With
    /// <paramref name="hubIds"/> (a clinic's hubs), only the pumps paired with those hubs now count (and no fleet-level
    /// anomaly, which belongs to no pump).
    /// </summary>
    Task<FleetOverview> FleetOverviewAsync(DateTimeOffset now, int days, TimeSpan silentAfter, CancellationToken ct, IReadOnlyList<string>? hubIds = null);

    /// <summary>Sort keys accepted by <see cref="ListPumpsAsync"/>.</summary>
    IReadOnlyCollection<string> PumpSortKeys { get; }

    /// <summary>A page of pump summaries and the total count of matches.</summary>
    Task<PagedResult<PumpSummary>> ListPumpsAsync(PumpFilter filter, string sort, bool descending, int page, int pageSize, CancellationToken ct);

    /// <summary>One pump's summary row, or null.</summary>
    Task<PumpSummary?> GetPumpAsync(string serial, CancellationToken ct);

    /// <summary>Distinct values of model, firmware and lot (for filter drop-downs).</summary>
    Task<IReadOnlyDictionary<string, IReadOnlyList<string>>> FacetsAsync(CancellationToken ct);

    /// <summary>Daily flow rows of one pump in [from, to].</summary>
    Task<IReadOnlyList<(DateOnly Day, double Delivered, double Programmed, double Measured, int Samples, double? ReservoirEnd, int Refills)>> DailyFlowAsync(
        string serial, DateOnly from, DateOnly to, CancellationToken ct);

    /// <summary>The last day with flow data for a pump, or null.</summary>
    Task<DateOnly?> LastFlowDayAsync(string serial, CancellationToken ct);

    /// <summary>Anomalies by status (null: any), kind, severity and serial, newest first.</summary>
    Task<IReadOnlyList<AnomalyItem>> ListAnomaliesAsync(string? status, string? kind, string? severity, string? serial, int limit, CancellationToken ct);

    /// <summary>One anomaly, or null.</summary>
    Task<AnomalyItem?> GetAnomalyAsync(string id, CancellationToken ct);

    /// <summary>Alarms from the log: one pump's (newest first) or the fleet's active ones.</summary>
    Task<IReadOnlyList<AlarmItem>> ListAlarmsAsync(string? serial, bool activeOnly, string? severity, int limit, CancellationToken ct);

    /// <summary>
    /// Cohorts grouped by the chosen dimensions (a non-empty subset of <see cref="CohortDimensions.All"/>, canonical
    /// order): pumps, pump-days, events and pumps affected per measure; with <paramref name="hubIds"/>, only the pumps
    /// paired with those hubs now (a clinic's).
    /// </summary>
    Task<IReadOnlyList<CohortRow>> CohortsAsync(IReadOnlyList<string> by, CancellationToken ct, IReadOnlyList<string>? hubIds = null);

    /// <summary>
    /// Follow-up from implant per cohort (dimensions from <see cref="CohortDimensions.Survival"/>) and whole day:
    /// how many reached the end point (<c>explant</c>, or a first failure <c>anomaly:{kind}</c> / <c>alarm:{code}</c>)
    /// and how many were censored (at the last report, or at explant for a failure end point).
    /// With <paramref name="hubIds"/>, only the pumps paired with those hubs now (a clinic's).
    /// </summary>
    Task<SurvivalData> SurvivalAsync(IReadOnlyList<string> by, string endpoint, CancellationToken ct, IReadOnlyList<string>? hubIds = null);

    /// <summary>Counts for the fleet header and a version string that changes whenever a projection applied a page.</summary>
    Task<FleetSummary> FleetSummaryAsync(CancellationToken ct);

    /// <summary>The version string alone (cheap: one small table).</summary>
    Task<string> VersionAsync(CancellationToken ct);

    /// <summary>The therapy a pump was implanted in, or null (also the check that a serial is not another therapy's).</summary>
    Task<PumpTherapy?> GetPumpTherapyAsync(string serial, CancellationToken ct);

    /// <summary>Therapies, optionally of one phase, newest opened first.</summary>
    Task<IReadOnlyList<TherapySummary>> ListTherapiesAsync(string? phase, int limit, CancellationToken ct);

    /// <summary>A pump's refills with event time in [from, to], oldest first.</summary>
    Task<IReadOnlyList<RefillItem>> ListRefillsAsync(string serial, DateTimeOffset from, DateTimeOffset to, int limit, CancellationToken ct);

    /// <summary>Progress rows of every projection partition.</summary>
    Task<IReadOnlyList<ProjectionProgress>> ProjectionProgressAsync(CancellationToken ct);
}
