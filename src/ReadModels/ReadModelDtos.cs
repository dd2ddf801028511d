using System.Text.Json;

namespace PumpFleet.ReadModels;

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

/// <summary>Fleet counts for the live channel and the fleet page header.</summary>
public sealed record FleetSummary(IReadOnlyDictionary<string, long> ByStatus, long Total, long OpenAnomalies, long CriticalAlarms, string Version);

/// <summary>A pump's row for the refill worklist (<c>GET /api/worklist</c>): the ledger's dates and what to prepare.</summary>
public sealed record WorklistRow(
    string Serial, string? HubId, string? Model, string? Firmware, string? Lot, string? Drug, double? ConcentrationValue,
    string? ConcentrationUnit, double? ReservoirCapacityMl, double? ReservoirMl, DateTimeOffset NextRefillDueAt,
    DateTimeOffset? LowReservoirAt, DateTimeOffset? ForecastFrom, string Status, double? DeliveredSinceRefillMl, double? ForecastRateMlPerDay,
    double? LowReservoirMl);

/// <summary>The fleet overview's aggregates (<c>GET /api/fleet/overview</c>).</summary>
/// <param name="Days">The UTC days covered, oldest first.</param>
/// <param name="OpenAnomaliesByKind">Per kind, anomalies open at the end of each day (aligned with <paramref name="Days"/>).</param>
/// <param name="PumpsReportingByDay">Pumps with daily flow on each day (aligned with <paramref name="Days"/>).</param>
/// <param name="RefillDue">Pumps (not explanted) per refill-due bucket: overdue, 0–7 d, 7–14 d, 14–30 d, 30–60 d, 60 d+, none.</param>
/// <param name="SilentPumps">Pumps (not explanted) not heard from for longer than the silent window.</param>
public sealed record FleetOverview(
    DateTimeOffset Now, IReadOnlyList<DateOnly> Days, IReadOnlyDictionary<string, long[]> OpenAnomaliesByKind, long[] PumpsReportingByDay,
    IReadOnlyList<(string Bucket, long Pumps)> RefillDue, long SilentPumps);
