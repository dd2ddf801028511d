namespace PumpFleet.ReadModels;

/// <summary>
/// The "attention first" order of the fleet list. The expression is also the key of index
/// <c>pf_pump_status_attention</c> (Sql/020_read_models.sql); PostgreSQL uses an expression index only for the same
/// text, so the query takes it from here and a test checks that the migration's index matches it.
/// </summary>
public static class PumpStatusRank
{
    /// <summary>SQL rank of <c>pf_pump_status.status</c>: critical 0, attention 1, stopped 2, unknown 3, ok 4, anything else 5.</summary>
    public const string Sql = "(CASE status WHEN 'critical' THEN 0 WHEN 'attention' THEN 1 WHEN 'stopped' THEN 2 WHEN 'unknown' THEN 3 WHEN 'ok' THEN 4 ELSE 5 END)";
}
