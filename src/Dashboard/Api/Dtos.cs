using System.Text.Json;

namespace PumpFleet.Dashboard.Api;

/// <summary>One pump in <c>GET /api/pumps</c> (protocol.md §2 fields first; the rest are compatible additions).</summary>
public sealed record PumpSummary(
    string Serial, string? HubId, string? Model, string? Firmware, string? Lot, string? Phase, string? Drug, string Status,
    double? ReservoirMl, DateTimeOffset? ForecastEmptyAt, int ActiveAlarms, int OpenAnomalies, DateTimeOffset? LastSeenAt,
    DateTimeOffset? NextRefillDueAt, IReadOnlyList<string> ActiveAlarmCodes, DateTimeOffset? LastEventAt, long LastSeq, double? BatteryPct);

/// <summary>A page of results with the total count of matches.</summary>
public sealed record PagedResult<T>(IReadOnlyList<T> Items, int Page, int PageSize, long Total);

/// <summary>An anomaly (<c>GET /api/anomalies</c>).</summary>
public sealed record AnomalyItem(
    string Id, string Serial, string Kind, string Severity, string Status, DateTimeOffset DetectedAt, JsonElement Evidence,
    string Summary, string? AcknowledgedBy, DateTimeOffset? AcknowledgedAt, string? ResolvedBy, DateTimeOffset? ResolvedAt, string? Note);

/// <summary>An alarm from the alarm log (<c>GET /api/alarms</c>, <c>GET /api/pumps/{serial}/alarms</c>).</summary>
public sealed record AlarmItem(string Serial, long Seq, string Code, string Severity, DateTimeOffset RaisedAt, DateTimeOffset? ClearedAt);

/// <summary>One bucket of <c>GET /api/pumps/{serial}/flow</c>. Flows in mL/day; reservoir level at the bucket's end.</summary>
public sealed record FlowPoint(
    DateOnly Start, int Days, double ProgrammedMlPerDay, double DeliveredMlPerDay, double? MeasuredMlPerDay, double? ReservoirMl, int Refills);

/// <summary>The flow series of one pump.</summary>
public sealed record FlowSeries(string Serial, string Bucket, DateOnly From, DateOnly To, IReadOnlyList<FlowPoint> Points);

/// <summary>One cohort of <c>GET /api/cohorts</c>.</summary>
public sealed record CohortItem(
    string? Model, string? Firmware, string? Lot, long Pumps, double PumpDays, long Alarms, long CriticalAlarms, long Anomalies,
    string Metric, long Count, double? Rate, double? RateLower, double? RateUpper, double? RestOfFleetRate, bool Signal);

/// <summary>The cohort table with the grouping and the signal rule used.</summary>
public sealed record CohortReport(IReadOnlyList<string> By, string Metric, int MinimumCount, double FleetPumpDays, long FleetCount, double? FleetRate, IReadOnlyList<CohortItem> Cohorts);

/// <summary>Body of acknowledge and resolve.</summary>
public sealed record AnomalyActionRequest(string? Note);

/// <summary>Result of acknowledge and resolve.</summary>
public sealed record AnomalyActionResult(string Id, string Serial, string Status, string By, string? Note);

/// <summary>Progress of one projection partition (<c>GET /api/admin/projections</c>).</summary>
public sealed record ProjectionProgress(string Name, string Projection, DateTimeOffset? LastReceivedAt, long EventsProcessed, DateTimeOffset UpdatedAt);

/// <summary>Fleet counts for the live channel and the fleet page header.</summary>
public sealed record FleetSummary(IReadOnlyDictionary<string, long> ByStatus, long Total, long OpenAnomalies, long CriticalAlarms, string Version);
