
namespace PumpFleet.Dashboard.Api;

/// <summary>One bucket of <c>GET /api/pumps/{serial}/flow</c>. Flows in mL/day; reservoir level at the bucket's end.</summary>
public sealed record FlowPoint(
    DateOnly Start, int Days, double ProgrammedMlPerDay, double DeliveredMlPerDay, double? MeasuredMlPerDay, double? ReservoirMl, int Refills);

/// <summary>The flow series of one pump.</summary>
public sealed record FlowSeries(string Serial, string Bucket, DateOnly From, DateOnly To, IReadOnlyList<FlowPoint> Points);

/// <summary>
/// One cohort of <c>GET /api/cohorts</c>: its key (dimension → value; the protocol's model, firmware and lot also as
/// fields), exposure, counts, and for the chosen metric the event rate per 1000 pump-days (exact Garwood interval)
/// and the pumps affected (exact Clopper–Pearson interval), each against the rest of the fleet with its exact
/// one-sided p-value and Benjamini–Hochberg q-value (null when not tested).
/// </summary>
public sealed record CohortItem(
    string? Model, string? Firmware, string? Lot, long Pumps, double PumpDays, long Alarms, long CriticalAlarms, long Anomalies,
    string Metric, long Count, double? Rate, double? RateLower, double? RateUpper, double? RestOfFleetRate, bool Signal,
    IReadOnlyDictionary<string, string> Key, long PumpsAffected, double? ProportionAffected, double? ProportionLower, double? ProportionUpper,
    double? RestOfFleetProportion, double? RatePValue, double? RateQValue, double? ProportionPValue, double? ProportionQValue);

/// <summary>The cohort table with the grouping and the signal rule used (method, false-discovery rate, how many tests).</summary>
public sealed record CohortReport(
    IReadOnlyList<string> By, string Metric, int MinimumCount, double FleetPumpDays, long FleetCount, double? FleetRate, IReadOnlyList<CohortItem> Cohorts,
    string Method, double FalseDiscoveryRate, int Tests, double Confidence, long FleetPumps, long FleetPumpsAffected, string? ClinicId = null);

/// <summary>One step of a survival curve (days since implant).</summary>
public sealed record SurvivalPoint(double Day, long AtRisk, long Events, long Censored, double Survival, double Lower, double Upper);

/// <summary>One cohort's Kaplan–Meier curve.</summary>
public sealed record SurvivalCohort(IReadOnlyDictionary<string, string> Key, string Label, long Pumps, long Events, long Censored, double LastDay, IReadOnlyList<SurvivalPoint> Steps);

/// <summary><c>GET /api/cohorts/survival</c>.</summary>
public sealed record SurvivalReport(
    IReadOnlyList<string> By, string Endpoint, string Method, double Confidence, long WithoutImplantDate, long EndPointBeforeImplant, IReadOnlyList<SurvivalCohort> Cohorts,
    string? ClinicId = null);

/// <summary>Body of acknowledge and resolve.</summary>
public sealed record AnomalyActionRequest(string? Note);

/// <summary>Result of acknowledge and resolve.</summary>
public sealed record AnomalyActionResult(string Id, string Serial, string Status, string By, string? Note);
