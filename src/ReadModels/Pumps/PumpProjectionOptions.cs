using Microsoft.Extensions.Options;

namespace PumpFleet.ReadModels;

/// <summary>Options of the <c>pumps</c> projection (section <c>Projections:Pumps</c>).</summary>
public sealed class PumpProjectionOptions
{
    /// <summary>The configuration section.</summary>
    public const string SectionName = "Projections:Pumps";

    /// <summary>
    /// Issue 14 (h14q), default on: the page's status rows are read by key without <c>FOR UPDATE</c>. The lock guarded
    /// nothing: the only writer of a pump's rows (<c>pf_pump_status</c>, <c>pf_daily_flow</c>, <c>pf_pump_fold</c>,
    /// <c>pf_alarm_log</c>) is the transaction that holds the pump's log partition's checkpoint (a rebuild takes the same
    /// checkpoints before it empties the tables). Off: the earlier read with the row lock, kept so a benchmark can
    /// compare both in one run (ProjectionBench <c>--compare-pumps-shapes</c>).
    /// </summary>
    public bool LockFreeReads { get; set; } = true;

    /// <summary>
    /// Issue 14 (h14q), default on: a pump whose rarely changing columns (identity, drug, status, alarms, flow factors…)
    /// are the ones its row already holds (known when the worker wrote the row itself and still holds that version in
    /// memory) gets a narrow <c>UPDATE … FROM unnest</c> of the 13 columns that move with nearly every event (last seen,
    /// reservoir, forecasts, version…); only new pumps, pumps taken over from another worker and pumps whose other
    /// columns changed go through the 36-column <c>INSERT … ON CONFLICT DO UPDATE</c>. Off: every changed pump through the
    /// full upsert, as before.
    /// </summary>
    public bool NarrowStatusUpdates { get; set; } = true;

    /// <summary>
    /// Issue 14 (h14q), default off: on, the page's transaction runs with <c>SET LOCAL plan_cache_mode =
    /// force_generic_plan</c>, so its statements (auto-prepared by Npgsql) reuse the plan made at their first execution
    /// instead of PostgreSQL's own choice, which may plan statements over <c>unnest(array parameters)</c> anew for every
    /// page. Measured without a gain in the catch-up (docs/benchmarks.md), so off; kept so the quiet machine can pair it.
    /// </summary>
    public bool GenericPlans { get; set; }

    /// <summary>
    /// Issue 14 (h14t), default on: rows the page knows exist are written with a plain <c>UPDATE … FROM unnest</c> and
    /// rows it knows are new with a plain <c>INSERT</c>, without <c>ON CONFLICT</c> (whose speculative insertion and row
    /// lock cost PostgreSQL CPU on every row): a pump's <c>pf_daily_flow</c> row of the newest day the pump has rows for
    /// is updated, a later day's inserted (only an earlier day, a late event, takes the upsert), and a pump without a
    /// status row gets its row inserted. The page knows which rows exist because only the transaction holding the
    /// pump's log partition's checkpoint writes them: the newest flow day is remembered with the pump's fold, or read in
    /// the page's transaction when the fold is not in memory. Each <c>UPDATE</c> checks that it found every row, and a
    /// wrong guess fails the page, which is retried with the pumps forgotten. Off: every row through the upsert, as before.
    /// </summary>
    public bool KnownRowWrites { get; set; } = true;
}

/// <summary>
/// Checks <see cref="PumpProjectionOptions"/> at start-up (registered with <c>ValidateOnStart</c>). Every switch is a
/// boolean with no invalid value (a value that is not a boolean fails in the binder, at start), so the check is that
/// the section bound at all.
/// </summary>
public sealed class PumpProjectionOptionsValidator : IValidateOptions<PumpProjectionOptions>
{
    /// <inheritdoc />
    public ValidateOptionsResult Validate(string? name, PumpProjectionOptions options) =>
        options is null
            ? ValidateOptionsResult.Fail("Projections:Pumps did not bind.")
            : ValidateOptionsResult.Success;
}
