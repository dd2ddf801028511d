
namespace PumpFleet.Dashboard.Api;

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
