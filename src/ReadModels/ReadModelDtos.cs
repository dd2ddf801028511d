using System.Text.Json;

namespace PumpFleet.ReadModels;

/// <summary>
/// One pump in <c>GET /api/pumps</c> (protocol.md §2 fields first; the rest are compatible additions). The therapy
/// fields come from <c>pf_therapy_pumps</c>: the therapy the pump was implanted in, that therapy's phase, and this
/// pump's own implant and explant dates (null when the pump belongs to no therapy).
/// </summary>
public sealed record PumpSummary(
    string Serial, string? HubId, string? Model, string? Firmware, string? Lot, string? Phase, string? Drug, string Status,
    double? ReservoirMl, DateTimeOffset? ForecastEmptyAt, int ActiveAlarms, int OpenAnomalies, DateTimeOffset? LastSeenAt,
    DateTimeOffset? NextRefillDueAt, IReadOnlyList<string> ActiveAlarmCodes, DateTimeOffset? LastEventAt, long LastSeq, double? BatteryPct,
    string? TherapyId = null, string? TherapyPhase = null, DateTimeOffset? ImplantedAt = null, DateTimeOffset? ExplantedAt = null);

/// <summary>The therapy a pump belongs to (<c>pf_therapy_pumps</c> joined with <c>pf_therapies</c>).</summary>
public sealed record PumpTherapy(
    string Serial, string TherapyId, string TherapyPhase, DateTimeOffset ImplantedAt, DateTimeOffset? ExplantedAt, string? ExplantReason,
    DateTimeOffset? TherapyImplantedAt);

/// <summary>One therapy in <c>GET /api/therapies</c> (<c>pf_therapies</c>).</summary>
public sealed record TherapySummary(
    string Id, string Phase, string? Indication, DateTimeOffset OpenedAt, string? CurrentSerial, DateTimeOffset? ImplantedAt, DateTimeOffset? EndedAt,
    IReadOnlyList<string> Serials);

/// <summary>One refill a pump reported (<c>pf_refill_log</c>).</summary>
public sealed record RefillItem(
    string Serial, long Seq, DateTimeOffset At, string Drug, double Concentration, string ConcentrationUnit, double AddedMl,
    double ExpectedResidualMl, double AspiratedResidualMl);

/// <summary>A page of results with the total count of matches.</summary>
public sealed record PagedResult<T>(IReadOnlyList<T> Items, int Page, int PageSize, long Total);

/// <summary>An anomaly (<c>GET /api/anomalies</c>).</summary>
public sealed record AnomalyItem(
    string Id, string Serial, string Kind, string Severity, string Status, DateTimeOffset DetectedAt, JsonElement Evidence,
    string Summary, string? AcknowledgedBy, DateTimeOffset? AcknowledgedAt, string? ResolvedBy, DateTimeOffset? ResolvedAt, string? Note);

/// <summary>An alarm from the alarm log (<c>GET /api/alarms</c>, <c>GET /api/pumps/{serial}/alarms</c>).</summary>
public sealed record AlarmItem(string Serial, long Seq, string Code, string Severity, DateTimeOffset RaisedAt, DateTimeOffset? ClearedAt);

/// <summary>Fleet counts for the live channel and the fleet page header.</summary>
public sealed record FleetSummary(IReadOnlyDictionary<string, long> ByStatus, long Total, long OpenAnomalies, long CriticalAlarms, string Version);

/// <summary>
/// One cohort of <c>GET /api/cohorts</c>: its key (one value per dimension asked for, in that order), exposure, and
/// per measure the events and the pumps with at least one.
/// </summary>
public sealed record CohortRow(
    IReadOnlyList<string> Key, long Pumps, double PumpDays, long Alarms, long AlarmPumps, long CriticalAlarms, long CriticalAlarmPumps,
    long Anomalies, long AnomalyPumps);

/// <summary>Follow-up that ended on one day after implant in one cohort: end points and censorings.</summary>
public sealed record SurvivalRow(IReadOnlyList<string> Key, int Day, long Events, long Censored);

/// <summary>Survival rows, and how many identified pumps could not be followed (no implant date, or the end point before it).</summary>
public sealed record SurvivalData(IReadOnlyList<SurvivalRow> Rows, long WithoutImplantDate, long EndPointBeforeImplant);

/// <summary>
/// A pump's row for the refill worklist (<c>GET /api/worklist</c>): the due date as stored (corrected when the pump's
/// cohort flow correction brings it forward), its source, the uncorrected date, the correction, and what to prepare.
/// </summary>
public sealed record WorklistRow(
    string Serial, string? HubId, string? Model, string? Firmware, string? Lot, string? Drug, double? ConcentrationValue,
    string? ConcentrationUnit, double? ReservoirCapacityMl, double? ReservoirMl, DateTimeOffset NextRefillDueAt,
    DateTimeOffset? LowReservoirAt, DateTimeOffset? ForecastFrom, string Status, double? DeliveredSinceRefillMl, double? ForecastRateMlPerDay,
    double? LowReservoirMl, string? NextRefillDueSource, DateTimeOffset? UncorrectedRefillDueAt, double? FlowFactor, string? FlowCohort,
    string? FlowAnomalyId);

/// <summary>The fleet overview's aggregates (<c>GET /api/fleet/overview</c>).</summary>
/// <param name="Days">The UTC days covered, oldest first.</param>
/// <param name="OpenAnomaliesByKind">Per kind, anomalies open at the end of each day (aligned with <paramref name="Days"/>).</param>
/// <param name="PumpsReportingByDay">Pumps with daily flow on each day (aligned with <paramref name="Days"/>).</param>
/// <param name="RefillDue">Pumps (not explanted) per refill-due bucket: overdue, 0–7 d, 7–14 d, 14–30 d, 30–60 d, 60 d+, none.</param>
/// <param name="SilentPumps">Pumps (not explanted) not heard from for longer than the silent window.</param>
/// <param name="DeviceEventsByDay">Device events stored per UTC day of receipt (the ingest read model), aligned with
/// <paramref name="Days"/>; null when the overview is of a clinic (the counts are per log partition, not per pump).</param>
public sealed record FleetOverview(
    DateTimeOffset Now, IReadOnlyList<DateOnly> Days, IReadOnlyDictionary<string, long[]> OpenAnomaliesByKind, long[] PumpsReportingByDay,
    IReadOnlyList<(string Bucket, long Pumps)> RefillDue, long SilentPumps, long[]? DeviceEventsByDay = null);
