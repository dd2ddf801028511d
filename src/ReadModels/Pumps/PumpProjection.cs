using System.Text.Json;
using Microsoft.Extensions.Options;
using Npgsql;
using NpgsqlTypes;
using PumpFleet.Contracts.Events;
using PumpFleet.Contracts.Json;
using PumpFleet.Domain.Detection.CohortFlow;
using PumpFleet.Domain.Pumps;
using PumpFleet.EventStore;
using PumpFleet.Projections;

namespace PumpFleet.ReadModels;

/// <summary>
/// The per-pump read models: <c>pf_pump_status</c>, <c>pf_daily_flow</c> and <c>pf_alarm_log</c>. They share one
/// projection because all three need the pump's folded state (ledger totals before and after each event), and
/// the fold is <see cref="PumpState"/> itself, the same code the grain runs, so the two never disagree.
/// The folded state stays in memory between pages (each pump belongs to one log partition, so to one worker); the
/// row's <c>version</c> tells whether the memory is still the committed fold. The jsonb state is written to
/// <c>pf_pump_fold</c> (migration 027: not in the status row, so a status update does not copy it) only every
/// <see cref="StateEvery"/> events of a pump (counted from version 0 for a new pump), with <c>state_version</c>: a worker without the pump
/// in memory folds the events after <c>state_version</c> from the log, so the writes per page are the columns the API
/// serves, not the whole folded state.
/// Issue 14 (h14q, <see cref="PumpProjectionOptions"/>): the page's rows are read without row locks, and a pump whose
/// rarely changing columns are unchanged since this worker wrote its row gets a narrow update of the columns that move.
/// Issue 14 (h14r, <see cref="IBatchedPageProjection"/>): the page's rows are read in the checkpoint lock's round trip and
/// the engine's checkpoint advance and commit ride in the page's batch of writes: two round trips per page.
/// </summary>
/// <param name="events">The event store's stream reads (a pump's fold from its stored state, a replay).</param>
/// <param name="options">The page shape (<see cref="PumpProjectionOptions"/>).</param>
/// <param name="stages">Where the time of a page goes (the read of its rows, the fold, the writes); optional.</param>
public sealed class PumpProjection(IEventReader events, IOptions<PumpProjectionOptions> options, PageStageTimes? stages = null) : IBatchedPageProjection
{
    /// <summary>The projection's name.</summary>
    public const string ProjectionName = "pumps";

    /// <summary>
    /// Events of one pump between two writes of its jsonb state: a worker that takes a pump over re-folds at most this
    /// many events from the log (one indexed stream read), against a jsonb write per pump per page otherwise.
    /// </summary>
    public const int StateEvery = 200;

    // Pumps in memory per process; beyond this the cache starts again (a miss costs one stream read, not correctness).
    private const int CacheLimit = 200_000;

    // Each pump's fold as last written by this worker, with the rarely changing columns its status row then got.
    private readonly System.Collections.Concurrent.ConcurrentDictionary<string, Cached> _cache = new(StringComparer.Ordinal);

    private long _narrowRows;
    private long _keyedFlowRows;

    /// <inheritdoc />
    public string Name => ProjectionName;

    // Status rows written by the narrow update since start (tests check the narrow path is taken at all).
    internal long NarrowRowsWritten => Interlocked.Read(ref _narrowRows);

    // Daily flow rows written by a plain INSERT or UPDATE (KnownRowWrites) since start (tests check the path is taken).
    internal long KeyedFlowRowsWritten => Interlocked.Read(ref _keyedFlowRows);

    /// <inheritdoc />
    public IReadOnlyList<string> Tables { get; } = ["pf_pump_status", "pf_pump_fold", "pf_daily_flow", "pf_alarm_log"];

    /// <inheritdoc />
    public Task ApplyAsync(NpgsqlConnection conn, NpgsqlTransaction tx, IReadOnlyList<StoredEvent> events, CancellationToken ct) =>
        ApplyAsync(conn, tx, events, null, PageTail.None, ct);

    /// <inheritdoc />
    public PageLoad? Load(IReadOnlyList<StoredEvent> events)
    {
        ArgumentNullException.ThrowIfNull(events);
        var shape = options.Value;
        return new RowLoad(this, SerialsOf(PumpEvents(events)), shape.LockFreeReads, shape.GenericPlans);
    }

    /// <inheritdoc />
    public async Task ApplyAsync(
        NpgsqlConnection conn, NpgsqlTransaction tx, IReadOnlyList<StoredEvent> events, PageLoad? loaded, PageTail tail, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(events);
        ArgumentNullException.ThrowIfNull(tail);
        events = PumpEvents(events);
        var serials = SerialsOf(events);
        try
        {
            await ApplyCoreAsync(conn, tx, events, serials, loaded as RowLoad, tail, ct);
        }
        catch
        {
            // A throw may leave a cached state half-applied at a version the row also has (inside a savepoint): forget
            // these pumps so the next page loads them from the committed row.
            foreach (var serial in serials)
            {
                _cache.TryRemove(serial, out _);
            }

            throw;
        }
    }

    // Fleet-level streams (cohort signals) are not pumps; the anomaly projection still sees them.
    private static StoredEvent[] PumpEvents(IReadOnlyList<StoredEvent> events) => [.. events.Where(e => Contracts.StreamIds.IsPump(e.StreamId))];

    private static string[] SerialsOf(IReadOnlyList<StoredEvent> events) => events.Select(e => e.StreamId).Distinct(StringComparer.Ordinal).ToArray();

    private async Task ApplyCoreAsync(
        NpgsqlConnection conn, NpgsqlTransaction tx, IReadOnlyList<StoredEvent> events, string[] serials, RowLoad? loaded,
        PageTail tail, CancellationToken ct)
    {
        var shape = options.Value;
        var t = System.Diagnostics.Stopwatch.GetTimestamp();
        // The page's rows, read in the checkpoint lock's round trip (LoadWithLock) or here in one of their own.
        if (loaded is null || !loaded.Serials.SequenceEqual(serials, StringComparer.Ordinal))
        {
            loaded = new RowLoad(this, serials, shape.LockFreeReads, shape.GenericPlans);
            await using var load = new NpgsqlBatch(conn, tx);
            foreach (var cmd in loaded.Commands)
            {
                load.BatchCommands.Add(cmd);
            }

            await using var r = await load.ExecuteReaderAsync(ct);
            await loaded.ReadAsync(r, ct);
        }

        var (states, stateVersions, written, newestFlowDays) = await CompleteLoadAsync(conn, tx, loaded, shape.KnownRowWrites, ct);
        t = stages?.Add(PageStage.StateRead, t) ?? t;
        var flows = new Dictionary<(string Serial, DateOnly Day), FlowDelta>();
        await using var batch = new NpgsqlBatch(conn, tx);
        var changed = new HashSet<string>(StringComparer.Ordinal);
        var replayed = new HashSet<string>(StringComparer.Ordinal);
        AlarmRaises? raises = null;

        foreach (var stored in events)
        {
            if (!states.TryGetValue(stored.StreamId, out var state))
            {
                state = new PumpState { Serial = stored.StreamId };
                states[stored.StreamId] = state;
            }

            // Replays of events already folded (same stream version) change nothing.
            if (stored.Version <= state.Version)
            {
                continue;
            }

            var e = EventJson.Deserialize(stored.Type, stored.Data);
            var programmedBefore = state.Ledger.ProgrammedTotalMl;
            var deliveredBefore = state.Ledger.DeliveredTotalMl;
            var measuredBefore = state.Ledger.MeasuredMl;
            state.Apply(e, new EventEnvelope(stored.Version, stored.Seq, stored.ReceivedAt, stored.ClockSuspect));
            if (state.NeedsRebuild)
            {
                // A device event from before the fold window: the pump's state is replayed in seq order (as the grain does).
                state = await ReplayAsync(stored.StreamId, stored.Version, ct);
                states[stored.StreamId] = state;
                replayed.Add(stored.StreamId);
            }

            changed.Add(stored.StreamId);

            if (e is DeviceEvent d)
            {
                // A suspect clock says nothing about which day the event belongs to; its receive day is the best guess.
                var at = stored.ClockSuspect ? stored.ReceivedAt : d.At;
                var key = (stored.StreamId, DateOnly.FromDateTime(at.UtcDateTime));
                var f = flows.GetValueOrDefault(key) ?? new FlowDelta();
                f.Programmed += state.Ledger.ProgrammedTotalMl - programmedBefore;
                f.Delivered += state.Ledger.DeliveredTotalMl - deliveredBefore;
                if (d is ReservoirLevelReported { Source: "measured" } level)
                {
                    // Measured flow: drops between consecutive sensor readings (a rise is a refill, not flow).
                    if (measuredBefore is { } prev && level.VolumeMl < prev)
                    {
                        f.Measured += prev - level.VolumeMl;
                    }

                    f.MeasuredSamples++;
                }

                if (d is RefillPerformed)
                {
                    f.Refills++;
                }

                f.ReservoirEnd = state.Ledger.EstimatedMl;
                flows[key] = f;
                AddAlarmCommand(batch, ref raises, stored, d);
            }
        }

        FlushRaises(batch, ref raises);
        if (_cache.Count + changed.Count > CacheLimit)
        {
            _cache.Clear();
        }

        // One set-based statement per table per page (arrays unnested server-side), not one statement per pump and
        // day: a page of 500 events touches tens of pumps, and per-row statements were the projection's main cost.
        var newestAfter = NewestFlowDaysAfter(newestFlowDays, flows);
        var status = new StatusRows(changed.Count);
        // KnownRowWrites: pumps the page's row read did not find have no row (only this partition's checkpoint holder
        // writes them), so a plain INSERT; a row there after all fails the page (a unique violation) and the retry upserts.
        var fresh = new StatusRows(changed.Count);
        var narrow = new NarrowRows(changed.Count);
        var folds = new FoldRows();
        foreach (var serial in changed)
        {
            var state = states[serial];
            // Every StateEvery events of a pump (a pump without a stored state counts from version 0: a worker without
            // it in memory folds its first events from the log, at most StateEvery of them, as it does after any stored
            // state), and after a replay of its stream (the costliest fold to repeat).
            if (state.Version - stateVersions.GetValueOrDefault(serial) >= StateEvery || replayed.Contains(serial))
            {
                folds.Add(state);
            }

            var (cold, hot) = StatusColumns.Of(state);
            // The row holds these cold columns only if this worker wrote it at the version the row has now (a cache hit
            // validated by the row's version): then the 13 moving columns are all that differ.
            if (shape.NarrowStatusUpdates && written.TryGetValue(serial, out var before) && before == cold)
            {
                narrow.Add(serial, hot);
            }
            else if (shape.KnownRowWrites && !stateVersions.ContainsKey(serial))
            {
                fresh.Add(serial, cold, hot);
            }
            else
            {
                status.Add(serial, cold, hot);
            }

            _cache[serial] = new Cached(state, cold, newestAfter.TryGetValue(serial, out var newestDay) ? newestDay : null);
        }

        if (status.Count > 0)
        {
            batch.BatchCommands.Add(status.ToCommand(upsert: true));
        }

        if (fresh.Count > 0)
        {
            batch.BatchCommands.Add(fresh.ToCommand(upsert: false));
        }

        // When the commit rides in this batch (a tail), the narrow update's count is checked inside the batch (migration
        // 065), before the COMMIT; otherwise after the round trip, as below.
        NpgsqlBatchCommand? narrowCommand = null;
        if (narrow.Count > 0)
        {
            narrowCommand = narrow.ToCommand(checkedInBatch: tail.Commands.Count > 0);
            batch.BatchCommands.Add(narrowCommand);
        }

        if (folds.Count > 0)
        {
            batch.BatchCommands.Add(folds.ToCommand());
        }

        NpgsqlBatchCommand? flowUpdate = null;
        var flowUpdates = 0;
        var keyedFlowRows = 0;
        if (flows.Count > 0 && !shape.KnownRowWrites)
        {
            batch.BatchCommands.Add(FlowUpsert(flows));
        }
        else if (flows.Count > 0)
        {
            // By the pump's newest flow day at the page's start: a later day has no row yet, that day has one, an earlier
            // day (a late event) may or may not (the upsert).
            var split = new Dictionary<(string Serial, DateOnly Day), FlowDelta>[3];
            for (var k = 0; k < split.Length; k++)
            {
                split[k] = [];
            }

            foreach (var (key, f) in flows)
            {
                var kind = newestFlowDays.TryGetValue(key.Serial, out var newest) ? key.Day > newest ? 0 : key.Day == newest ? 1 : 2 : 2;
                split[kind][key] = f;
            }

            keyedFlowRows = split[0].Count + split[1].Count;

            if (split[0].Count > 0)
            {
                batch.BatchCommands.Add(FlowWrite(split[0], FlowShape.Insert, checkedInBatch: false));
            }

            if (split[1].Count > 0)
            {
                flowUpdates = split[1].Count;
                flowUpdate = FlowWrite(split[1], FlowShape.Update, checkedInBatch: tail.Commands.Count > 0);
                batch.BatchCommands.Add(flowUpdate);
            }

            if (split[2].Count > 0)
            {
                batch.BatchCommands.Add(FlowUpsert(split[2]));
            }
        }

        foreach (var cmd in tail.Commands)
        {
            batch.BatchCommands.Add(cmd);
        }

        t = stages?.Add(PageStage.Fold, t) ?? t;
        if (batch.BatchCommands.Count > 0)
        {
            await batch.ExecuteNonQueryAsync(ct);
        }

        stages?.Add(PageStage.Write, t);

        // A narrow update of a row that is not there would lose the pump's page silently: it cannot happen while only
        // this partition's checkpoint holder writes the rows, so it is a fault (the page is rolled back and retried, and
        // the catch above forgets these pumps, so the retry writes them whole).
        if (narrowCommand is not null && tail.Commands.Count == 0 && narrowCommand.RecordsAffected != narrow.Count)
        {
            throw new InvalidOperationException(
                $"pumps: {narrow.Count} status rows to update in place, {narrowCommand.RecordsAffected} found; the page is retried with full rows.");
        }

        if (flowUpdate is not null && tail.Commands.Count == 0 && flowUpdate.RecordsAffected != flowUpdates)
        {
            throw new InvalidOperationException(
                $"pumps: {flowUpdates} daily flow rows to update in place, {flowUpdate.RecordsAffected} found; the page is retried with upserts.");
        }

        Interlocked.Add(ref _narrowRows, narrow.Count);
        Interlocked.Add(ref _keyedFlowRows, keyedFlowRows);
    }

    // Each pump's newest pf_daily_flow day after this page (DateOnly.MinValue: no row), from the newest at the page's
    // start and the page's own days; a pump whose newest day at the start is not known stays unknown (absent).
    private static Dictionary<string, DateOnly> NewestFlowDaysAfter(Dictionary<string, DateOnly> atStart, Dictionary<(string Serial, DateOnly Day), FlowDelta> flows)
    {
        var after = new Dictionary<string, DateOnly>(atStart, StringComparer.Ordinal);
        foreach (var (key, _) in flows)
        {
            if (after.TryGetValue(key.Serial, out var newest) && key.Day > newest)
            {
                after[key.Serial] = key.Day;
            }
        }

        return after;
    }

    private static NpgsqlBatchCommand FlowUpsert(Dictionary<(string Serial, DateOnly Day), FlowDelta> flows) => FlowWrite(flows, FlowShape.Upsert, checkedInBatch: false);

    // How a set of pf_daily_flow deltas is written: the upsert (rows that may or may not exist), or, KnownRowWrites, a
    // plain INSERT of rows known to be new or a plain UPDATE of rows known to exist (no speculative insertion, no row
    // lock taken before the update). checkedInBatch (Update only): the statement fails unless it found every row
    // (pf_pumps_rows_check, migration 066), for a batch that ends with the page's COMMIT.
    private static NpgsqlBatchCommand FlowWrite(Dictionary<(string Serial, DateOnly Day), FlowDelta> flows, FlowShape shape, bool checkedInBatch)
    {
        var n = flows.Count;
        var serials = new string[n];
        var days = new DateOnly[n];
        var delivered = new double[n];
        var programmed = new double[n];
        var measured = new double[n];
        var samples = new int[n];
        var reservoirEnd = new double?[n];
        var refills = new int[n];
        var i = 0;
        foreach (var ((serial, day), f) in flows)
        {
            serials[i] = serial;
            days[i] = day;
            delivered[i] = f.Delivered;
            programmed[i] = f.Programmed;
            measured[i] = f.Measured;
            samples[i] = f.MeasuredSamples;
            reservoirEnd[i] = f.ReservoirEnd;
            refills[i] = f.Refills;
            i++;
        }

        // (serial, day) is unique within the page (one delta per key), as ON CONFLICT DO UPDATE and the UPDATE's join need.
        var cmd = new NpgsqlBatchCommand(shape switch
        {
            FlowShape.Update => (checkedInBatch ? "WITH w AS (" : "") + """
                UPDATE pf_daily_flow f SET
                    delivered_ml = f.delivered_ml + u.delivered_ml,
                    programmed_ml = f.programmed_ml + u.programmed_ml,
                    measured_ml = f.measured_ml + u.measured_ml,
                    measured_samples = f.measured_samples + u.measured_samples,
                    reservoir_ml_end = coalesce(u.reservoir_ml_end, f.reservoir_ml_end),
                    refills = f.refills + u.refills
                  FROM unnest($1::text[], $2::date[], $3::float8[], $4::float8[], $5::float8[], $6::int[], $7::float8[], $8::int[])
                       AS u(serial, day, delivered_ml, programmed_ml, measured_ml, measured_samples, reservoir_ml_end, refills)
                 WHERE f.serial = u.serial AND f.day = u.day
                """ + (checkedInBatch ? " RETURNING 1) SELECT pf_pumps_rows_check(count(*), $9, 'daily flow') FROM w" : ""),
            _ => """
                INSERT INTO pf_daily_flow (serial, day, delivered_ml, programmed_ml, measured_ml, measured_samples, reservoir_ml_end, refills)
                SELECT * FROM unnest($1::text[], $2::date[], $3::float8[], $4::float8[], $5::float8[], $6::int[], $7::float8[], $8::int[])
                """ + (shape == FlowShape.Insert ? "" : """

                ON CONFLICT (serial, day) DO UPDATE SET
                    delivered_ml = pf_daily_flow.delivered_ml + excluded.delivered_ml,
                    programmed_ml = pf_daily_flow.programmed_ml + excluded.programmed_ml,
                    measured_ml = pf_daily_flow.measured_ml + excluded.measured_ml,
                    measured_samples = pf_daily_flow.measured_samples + excluded.measured_samples,
                    reservoir_ml_end = coalesce(excluded.reservoir_ml_end, pf_daily_flow.reservoir_ml_end),
                    refills = pf_daily_flow.refills + excluded.refills
                """),
        });
        cmd.Parameters.Add(Column(serials, NpgsqlDbType.Text));
        cmd.Parameters.Add(Column(days, NpgsqlDbType.Date));
        cmd.Parameters.Add(Column(delivered, NpgsqlDbType.Double));
        cmd.Parameters.Add(Column(programmed, NpgsqlDbType.Double));
        cmd.Parameters.Add(Column(measured, NpgsqlDbType.Double));
        cmd.Parameters.Add(Column(samples, NpgsqlDbType.Integer));
        cmd.Parameters.Add(Column(reservoirEnd, NpgsqlDbType.Double));
        cmd.Parameters.Add(Column(refills, NpgsqlDbType.Integer));
        if (shape == FlowShape.Update && checkedInBatch)
        {
            cmd.Parameters.Add(new() { Value = n, NpgsqlDbType = NpgsqlDbType.Integer });
        }

        return cmd;
    }

    private enum FlowShape
    {
        Upsert,
        Insert,
        Update,
    }

    // Alarm-log writes keep the page's event order (a clear closes the raises before it, not a raise later in the
    // page), so only runs of consecutive raises become one statement; each clear stays its own.
    private static void AddAlarmCommand(NpgsqlBatch batch, ref AlarmRaises? raises, StoredEvent stored, DeviceEvent d)
    {
        switch (d)
        {
            case AlarmRaised x:
                raises ??= new AlarmRaises();
                raises.Add(stored.StreamId, x);
                break;

            case AlarmCleared x:
            {
                FlushRaises(batch, ref raises);
                var cmd = new NpgsqlBatchCommand("""
                    UPDATE pf_alarm_log SET cleared_at = $3
                    WHERE serial = $1 AND code = $2 AND cleared_at IS NULL AND raised_at <= $3
                    """);
                cmd.Parameters.Add(new() { Value = stored.StreamId });
                cmd.Parameters.Add(new() { Value = x.Code });
                cmd.Parameters.Add(new() { Value = x.At.ToUniversalTime() });
                batch.BatchCommands.Add(cmd);
                break;
            }
        }
    }

    private static void FlushRaises(NpgsqlBatch batch, ref AlarmRaises? raises)
    {
        if (raises is null)
        {
            return;
        }

        batch.BatchCommands.Add(raises.ToCommand());
        raises = null;
    }

    private static NpgsqlParameter Column<T>(T[] values, NpgsqlDbType type) => new() { Value = values, NpgsqlDbType = NpgsqlDbType.Array | type };

    // A run of alarm raises, inserted by one statement. The same (serial, seq) twice in one run (a replayed event in
    // the same page) is written once: ON CONFLICT DO NOTHING tolerates duplicates within one statement.
    private sealed class AlarmRaises
    {
        private readonly List<string> _serials = [];
        private readonly List<long> _seqs = [];
        private readonly List<string> _codes = [];
        private readonly List<string> _severities = [];
        private readonly List<DateTime> _raisedAt = [];

        public void Add(string serial, AlarmRaised x)
        {
            _serials.Add(serial);
            _seqs.Add(x.Seq);
            _codes.Add(x.Code);
            _severities.Add(x.Severity);
            _raisedAt.Add(x.At.UtcDateTime);
        }

        public NpgsqlBatchCommand ToCommand()
        {
            var cmd = new NpgsqlBatchCommand("""
                INSERT INTO pf_alarm_log (serial, seq, code, severity, raised_at)
                SELECT * FROM unnest($1::text[], $2::bigint[], $3::text[], $4::text[], $5::timestamptz[])
                ON CONFLICT (serial, seq) DO NOTHING
                """);
            cmd.Parameters.Add(Column(_serials.ToArray(), NpgsqlDbType.Text));
            cmd.Parameters.Add(Column(_seqs.ToArray(), NpgsqlDbType.Bigint));
            cmd.Parameters.Add(Column(_codes.ToArray(), NpgsqlDbType.Text));
            cmd.Parameters.Add(Column(_severities.ToArray(), NpgsqlDbType.Text));
            cmd.Parameters.Add(Column(_raisedAt.ToArray(), NpgsqlDbType.TimestampTz));
            return cmd;
        }
    }

    // A status row's columns that change rarely (identity, drug, status, alarms, flow factors): compared with what the
    // worker last wrote to decide whether the narrow update suffices. A record: equality is by value, column by column.
    private sealed record ColdColumns(
        string? Hub, string? Model, string? Firmware, string? Lot, string? Phase, string? Drug, string? Status, int ActiveAlarms,
        string Codes, int OpenAnomalies, bool Critical, double? Capacity, double? Concentration, string? ConcentrationUnit,
        double? RefillFlowFactor, DateTime? RefillFlowAt, double? RefillFlowCycle, double? LowReservoirMl, string? DueSource,
        double? HeldFactor, string? FlowCohort, string? FlowAnomaly);

    // The columns that move with nearly every event (a dose moves the reservoir, the forecasts and last seen).
    private readonly record struct HotColumns(
        double? Reservoir, DateTime? ForecastEmpty, DateTime? RefillDue, DateTime? LastSeen, DateTime? LastEvent, long LastSeq,
        double? Battery, long Version, DateTime? LowReservoirAt, DateTime? ForecastFrom, double SinceRefill, double? ForecastRate,
        DateTime? UncorrectedDue);

    // A pump's fold in memory, the cold columns of the status row this worker wrote from it, and the pump's newest
    // pf_daily_flow day then (DateOnly.MinValue: none; null: not known, KnownRowWrites off).
    private sealed class Cached(PumpState state, ColdColumns written, DateOnly? newestFlowDay)
    {
        public PumpState State { get; } = state;
        public ColdColumns Written { get; } = written;
        public DateOnly? NewestFlowDay { get; } = newestFlowDay;
        public long Version => State.Version;
    }

    private static class StatusColumns
    {
        public static (ColdColumns Cold, HotColumns Hot) Of(PumpState state)
        {
            var view = state.ToView();
            // The last complete cycle's flow factor: the cohort-flow job's sample (pure rule in Domain, minimum cycle
            // 0.1 mL here; the job applies the configured minimum when it reads).
            var refill = state.Detectors.Refill;
            var factor = RefillFlow.FactorOf(refill, 0.1);
            // The due date is already corrected when the pump's cohort correction brings it forward; these say so.
            var held = state.FlowCorrection?.ToCorrection();
            var cold = new ColdColumns(
                view.HubId, view.Model, view.Firmware, view.Lot, view.Phase, view.Drug, view.Status, view.ActiveAlarms.Count,
                // A text[] per row cannot be a row of a rectangular array: each row's codes travel as a JSON array.
                JsonSerializer.Serialize(view.ActiveAlarms.Select(a => a.Code).ToArray()),
                view.OpenAnomalies.Count, view.Status == Contracts.Views.PumpStatuses.Critical, view.ReservoirCapacityMl,
                view.Prescription?.Concentration.Value, view.Prescription?.Concentration.Unit,
                factor, factor is null ? null : Utc(refill.LastRefillAt), factor is null ? null : refill.CycleDeliveredMl,
                view.LowReservoirMl, view.NextRefillDueSource, held?.Factor, held?.Cohort.StreamId, held?.AnomalyId);
            var hot = new HotColumns(
                view.ReservoirMl, Utc(view.ForecastEmptyAt), Utc(view.NextRefillDueAt), Utc(view.LastSeenAt), Utc(view.LastEventAt),
                view.LastSeq, view.BatteryPct, state.Version, Utc(view.LowReservoirAt), Utc(view.ForecastFrom),
                view.Ledger.DeliveredSinceRefillMl, view.Ledger.ForecastRateMlPerDay, Utc(view.UncorrectedNextRefillDueAt));
            return (cold, hot);
        }

        private static DateTime? Utc(DateTimeOffset? v) => v?.UtcDateTime;
    }

    // The states due to be stored (a replayed stream, every StateEvery events), one statement.
    private sealed class FoldRows
    {
        private readonly List<string> _serial = [], _state = [];
        private readonly List<long> _version = [];

        public int Count => _serial.Count;

        public void Add(PumpState state)
        {
            _serial.Add(state.Serial);
            _version.Add(state.Version);
            _state.Add(JsonSerializer.Serialize(state, SnapshotJson.Options));
        }

        // Guarded by version: a state never replaces a newer one.
        public NpgsqlBatchCommand ToCommand()
        {
            var cmd = new NpgsqlBatchCommand("""
                INSERT INTO pf_pump_fold (serial, state_version, state)
                SELECT u.serial, u.state_version, u.state::jsonb FROM unnest($1::text[], $2::bigint[], $3::text[]) AS u(serial, state_version, state)
                ON CONFLICT (serial) DO UPDATE SET state_version = excluded.state_version, state = excluded.state
                WHERE pf_pump_fold.state_version <= excluded.state_version
                """);
            cmd.Parameters.Add(Column(_serial.ToArray(), NpgsqlDbType.Text));
            cmd.Parameters.Add(Column(_version.ToArray(), NpgsqlDbType.Bigint));
            cmd.Parameters.Add(Column(_state.ToArray(), NpgsqlDbType.Text));
            return cmd;
        }
    }

    // The moving columns of pumps whose row this worker wrote with the same cold columns: one UPDATE … FROM unnest of 14
    // arrays (the 36 of the full upsert were most of its cost, ~17 µs per row). Serials are distinct (one per changed pump).
    private sealed class NarrowRows(int capacity)
    {
        private readonly List<string> _serial = new(capacity);
        private readonly List<HotColumns> _hot = new(capacity);

        public int Count => _serial.Count;

        public void Add(string serial, HotColumns hot)
        {
            _serial.Add(serial);
            _hot.Add(hot);
        }

        // checkedInBatch: the statement fails (pf_pumps_narrow_check, migration 065) unless it updated every row.
        public NpgsqlBatchCommand ToCommand(bool checkedInBatch)
        {
            var cmd = new NpgsqlBatchCommand((checkedInBatch ? "WITH w AS (" : "") + """
                UPDATE pf_pump_status s SET reservoir_ml = u.reservoir_ml, forecast_empty_at = u.forecast_empty_at,
                    next_refill_due_at = u.next_refill_due_at, last_seen_at = u.last_seen_at, last_event_at = u.last_event_at,
                    last_seq = u.last_seq, battery_pct = u.battery_pct, version = u.version, updated_at = now(),
                    low_reservoir_at = u.low_reservoir_at, forecast_from = u.forecast_from,
                    delivered_since_refill_ml = u.delivered_since_refill_ml, forecast_rate_ml_per_day = u.forecast_rate_ml_per_day,
                    uncorrected_refill_due_at = u.uncorrected_refill_due_at
                  FROM unnest($1::text[], $2::float8[], $3::timestamptz[], $4::timestamptz[], $5::timestamptz[], $6::timestamptz[],
                              $7::bigint[], $8::float8[], $9::bigint[], $10::timestamptz[], $11::timestamptz[], $12::float8[],
                              $13::float8[], $14::timestamptz[])
                       AS u(serial, reservoir_ml, forecast_empty_at, next_refill_due_at, last_seen_at, last_event_at, last_seq,
                            battery_pct, version, low_reservoir_at, forecast_from, delivered_since_refill_ml,
                            forecast_rate_ml_per_day, uncorrected_refill_due_at)
                 WHERE s.serial = u.serial
                """ + (checkedInBatch ? " RETURNING 1) SELECT pf_pumps_narrow_check(count(*), $15) FROM w" : ""));
            cmd.Parameters.Add(Column(_serial.ToArray(), NpgsqlDbType.Text));
            AddHot(cmd, _hot);
            if (checkedInBatch)
            {
                cmd.Parameters.Add(new() { Value = _serial.Count, NpgsqlDbType = NpgsqlDbType.Integer });
            }

            return cmd;
        }
    }

    // The 13 moving columns' arrays, in the order both statements take them after their leading parameters.
    private static void AddHot(NpgsqlBatchCommand cmd, List<HotColumns> hot)
    {
        cmd.Parameters.Add(Column(hot.Select(h => h.Reservoir).ToArray(), NpgsqlDbType.Double));
        cmd.Parameters.Add(Column(hot.Select(h => h.ForecastEmpty).ToArray(), NpgsqlDbType.TimestampTz));
        cmd.Parameters.Add(Column(hot.Select(h => h.RefillDue).ToArray(), NpgsqlDbType.TimestampTz));
        cmd.Parameters.Add(Column(hot.Select(h => h.LastSeen).ToArray(), NpgsqlDbType.TimestampTz));
        cmd.Parameters.Add(Column(hot.Select(h => h.LastEvent).ToArray(), NpgsqlDbType.TimestampTz));
        cmd.Parameters.Add(Column(hot.Select(h => h.LastSeq).ToArray(), NpgsqlDbType.Bigint));
        cmd.Parameters.Add(Column(hot.Select(h => h.Battery).ToArray(), NpgsqlDbType.Double));
        cmd.Parameters.Add(Column(hot.Select(h => h.Version).ToArray(), NpgsqlDbType.Bigint));
        cmd.Parameters.Add(Column(hot.Select(h => h.LowReservoirAt).ToArray(), NpgsqlDbType.TimestampTz));
        cmd.Parameters.Add(Column(hot.Select(h => h.ForecastFrom).ToArray(), NpgsqlDbType.TimestampTz));
        cmd.Parameters.Add(Column(hot.Select(h => h.SinceRefill).ToArray(), NpgsqlDbType.Double));
        cmd.Parameters.Add(Column(hot.Select(h => h.ForecastRate).ToArray(), NpgsqlDbType.Double));
        cmd.Parameters.Add(Column(hot.Select(h => h.UncorrectedDue).ToArray(), NpgsqlDbType.TimestampTz));
    }

    // The page's pump rows, every column, for one INSERT .. SELECT FROM unnest(..) ON CONFLICT DO UPDATE: new pumps,
    // pumps this worker did not write last, pumps whose cold columns changed (and every pump with NarrowStatusUpdates
    // off). Serials are distinct (one entry per changed pump), as ON CONFLICT DO UPDATE needs.
    private sealed class StatusRows(int capacity)
    {
        private readonly List<string> _serial = new(capacity);
        private readonly List<ColdColumns> _cold = new(capacity);
        private readonly List<HotColumns> _hot = new(capacity);

        public int Count => _serial.Count;

        public void Add(string serial, ColdColumns cold, HotColumns hot)
        {
            _serial.Add(serial);
            _cold.Add(cold);
            _hot.Add(hot);
        }

        // upsert false: a plain INSERT of rows known to be new (KnownRowWrites), without the speculative insertion.
        public NpgsqlBatchCommand ToCommand(bool upsert)
        {
            // Only what the API and the pages read: the folded state is pf_pump_fold's (FoldRows, migration 027).
            var cmd = new NpgsqlBatchCommand(upsert ? InsertSql + UpsertSql : InsertSql);
            AddParameters(cmd);
            return cmd;
        }

        private const string InsertSql = """
                INSERT INTO pf_pump_status (serial, hub_id, model, firmware, lot, phase, drug, status, reservoir_ml, forecast_empty_at,
                    next_refill_due_at, active_alarms, active_alarm_codes, open_anomalies, last_seen_at, last_event_at, last_seq,
                    battery_pct, critical, version, updated_at, low_reservoir_at, forecast_from, reservoir_capacity_ml,
                    concentration_value, concentration_unit, refill_flow_factor, refill_flow_at, refill_flow_cycle_ml,
                    delivered_since_refill_ml, forecast_rate_ml_per_day, low_reservoir_ml, next_refill_due_source, uncorrected_refill_due_at,
                    flow_factor, flow_cohort, flow_anomaly_id)
                SELECT u.serial, u.hub_id, u.model, u.firmware, u.lot, u.phase, u.drug, u.status, u.reservoir_ml, u.forecast_empty_at,
                    u.next_refill_due_at, u.active_alarms, ARRAY(SELECT jsonb_array_elements_text(u.codes::jsonb)), u.open_anomalies,
                    u.last_seen_at, u.last_event_at, u.last_seq, u.battery_pct, u.critical, u.version, now(),
                    u.low_reservoir_at, u.forecast_from, u.reservoir_capacity_ml, u.concentration_value, u.concentration_unit,
                    u.refill_flow_factor, u.refill_flow_at, u.refill_flow_cycle_ml, u.delivered_since_refill_ml,
                    u.forecast_rate_ml_per_day, u.low_reservoir_ml, u.next_refill_due_source, u.uncorrected_refill_due_at,
                    u.flow_factor, u.flow_cohort, u.flow_anomaly_id
                  FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[],
                              $9::float8[], $10::timestamptz[], $11::timestamptz[], $12::int[], $13::text[], $14::int[],
                              $15::timestamptz[], $16::timestamptz[], $17::bigint[], $18::float8[], $19::bool[], $20::bigint[],
                              $21::timestamptz[], $22::timestamptz[], $23::float8[], $24::float8[], $25::text[],
                              $26::float8[], $27::timestamptz[], $28::float8[], $29::float8[], $30::float8[], $31::float8[],
                              $32::text[], $33::timestamptz[], $34::float8[], $35::text[], $36::text[])
                       AS u(serial, hub_id, model, firmware, lot, phase, drug, status, reservoir_ml, forecast_empty_at,
                            next_refill_due_at, active_alarms, codes, open_anomalies, last_seen_at, last_event_at, last_seq,
                            battery_pct, critical, version, low_reservoir_at, forecast_from, reservoir_capacity_ml,
                            concentration_value, concentration_unit, refill_flow_factor, refill_flow_at, refill_flow_cycle_ml,
                            delivered_since_refill_ml, forecast_rate_ml_per_day, low_reservoir_ml, next_refill_due_source,
                            uncorrected_refill_due_at, flow_factor, flow_cohort, flow_anomaly_id)

                """;

        private const string UpsertSql = """
                ON CONFLICT (serial) DO UPDATE SET hub_id = excluded.hub_id, model = excluded.model, firmware = excluded.firmware,
                    lot = excluded.lot, phase = excluded.phase, drug = excluded.drug, status = excluded.status,
                    reservoir_ml = excluded.reservoir_ml, forecast_empty_at = excluded.forecast_empty_at,
                    next_refill_due_at = excluded.next_refill_due_at, active_alarms = excluded.active_alarms,
                    active_alarm_codes = excluded.active_alarm_codes, open_anomalies = excluded.open_anomalies,
                    last_seen_at = excluded.last_seen_at, last_event_at = excluded.last_event_at, last_seq = excluded.last_seq,
                    battery_pct = excluded.battery_pct, critical = excluded.critical, version = excluded.version,
                    updated_at = now(), low_reservoir_at = excluded.low_reservoir_at,
                    forecast_from = excluded.forecast_from, reservoir_capacity_ml = excluded.reservoir_capacity_ml,
                    concentration_value = excluded.concentration_value, concentration_unit = excluded.concentration_unit,
                    refill_flow_factor = excluded.refill_flow_factor, refill_flow_at = excluded.refill_flow_at,
                    refill_flow_cycle_ml = excluded.refill_flow_cycle_ml, delivered_since_refill_ml = excluded.delivered_since_refill_ml,
                    forecast_rate_ml_per_day = excluded.forecast_rate_ml_per_day, low_reservoir_ml = excluded.low_reservoir_ml,
                    next_refill_due_source = excluded.next_refill_due_source, uncorrected_refill_due_at = excluded.uncorrected_refill_due_at,
                    flow_factor = excluded.flow_factor, flow_cohort = excluded.flow_cohort, flow_anomaly_id = excluded.flow_anomaly_id
                """;

        private void AddParameters(NpgsqlBatchCommand cmd)
        {
            var h = _hot;
            var c = _cold;
            cmd.Parameters.Add(Column(_serial.ToArray(), NpgsqlDbType.Text));
            cmd.Parameters.Add(Column(c.Select(x => x.Hub).ToArray(), NpgsqlDbType.Text));
            cmd.Parameters.Add(Column(c.Select(x => x.Model).ToArray(), NpgsqlDbType.Text));
            cmd.Parameters.Add(Column(c.Select(x => x.Firmware).ToArray(), NpgsqlDbType.Text));
            cmd.Parameters.Add(Column(c.Select(x => x.Lot).ToArray(), NpgsqlDbType.Text));
            cmd.Parameters.Add(Column(c.Select(x => x.Phase).ToArray(), NpgsqlDbType.Text));
            cmd.Parameters.Add(Column(c.Select(x => x.Drug).ToArray(), NpgsqlDbType.Text));
            cmd.Parameters.Add(Column(c.Select(x => x.Status).ToArray(), NpgsqlDbType.Text));
            cmd.Parameters.Add(Column(h.Select(x => x.Reservoir).ToArray(), NpgsqlDbType.Double));
            cmd.Parameters.Add(Column(h.Select(x => x.ForecastEmpty).ToArray(), NpgsqlDbType.TimestampTz));
            cmd.Parameters.Add(Column(h.Select(x => x.RefillDue).ToArray(), NpgsqlDbType.TimestampTz));
            cmd.Parameters.Add(Column(c.Select(x => x.ActiveAlarms).ToArray(), NpgsqlDbType.Integer));
            cmd.Parameters.Add(Column(c.Select(x => x.Codes).ToArray(), NpgsqlDbType.Text));
            cmd.Parameters.Add(Column(c.Select(x => x.OpenAnomalies).ToArray(), NpgsqlDbType.Integer));
            cmd.Parameters.Add(Column(h.Select(x => x.LastSeen).ToArray(), NpgsqlDbType.TimestampTz));
            cmd.Parameters.Add(Column(h.Select(x => x.LastEvent).ToArray(), NpgsqlDbType.TimestampTz));
            cmd.Parameters.Add(Column(h.Select(x => x.LastSeq).ToArray(), NpgsqlDbType.Bigint));
            cmd.Parameters.Add(Column(h.Select(x => x.Battery).ToArray(), NpgsqlDbType.Double));
            cmd.Parameters.Add(Column(c.Select(x => x.Critical).ToArray(), NpgsqlDbType.Boolean));
            cmd.Parameters.Add(Column(h.Select(x => x.Version).ToArray(), NpgsqlDbType.Bigint));
            cmd.Parameters.Add(Column(h.Select(x => x.LowReservoirAt).ToArray(), NpgsqlDbType.TimestampTz));
            cmd.Parameters.Add(Column(h.Select(x => x.ForecastFrom).ToArray(), NpgsqlDbType.TimestampTz));
            cmd.Parameters.Add(Column(c.Select(x => x.Capacity).ToArray(), NpgsqlDbType.Double));
            cmd.Parameters.Add(Column(c.Select(x => x.Concentration).ToArray(), NpgsqlDbType.Double));
            cmd.Parameters.Add(Column(c.Select(x => x.ConcentrationUnit).ToArray(), NpgsqlDbType.Text));
            cmd.Parameters.Add(Column(c.Select(x => x.RefillFlowFactor).ToArray(), NpgsqlDbType.Double));
            cmd.Parameters.Add(Column(c.Select(x => x.RefillFlowAt).ToArray(), NpgsqlDbType.TimestampTz));
            cmd.Parameters.Add(Column(c.Select(x => x.RefillFlowCycle).ToArray(), NpgsqlDbType.Double));
            cmd.Parameters.Add(Column(h.Select(x => x.SinceRefill).ToArray(), NpgsqlDbType.Double));
            cmd.Parameters.Add(Column(h.Select(x => x.ForecastRate).ToArray(), NpgsqlDbType.Double));
            cmd.Parameters.Add(Column(c.Select(x => x.LowReservoirMl).ToArray(), NpgsqlDbType.Double));
            cmd.Parameters.Add(Column(c.Select(x => x.DueSource).ToArray(), NpgsqlDbType.Text));
            cmd.Parameters.Add(Column(h.Select(x => x.UncorrectedDue).ToArray(), NpgsqlDbType.TimestampTz));
            cmd.Parameters.Add(Column(c.Select(x => x.HeldFactor).ToArray(), NpgsqlDbType.Double));
            cmd.Parameters.Add(Column(c.Select(x => x.FlowCohort).ToArray(), NpgsqlDbType.Text));
            cmd.Parameters.Add(Column(c.Select(x => x.FlowAnomaly).ToArray(), NpgsqlDbType.Text));
        }
    }

    // The page's pump rows (RowLoad) and each pump's fold at the row's version: from memory when it holds exactly
    // that version, otherwise the stored state (at state_version) plus the events after it, read from the log. The
    // second map is each row's state_version (pumps without a row are absent from it); the third the cold columns this
    // worker wrote to each row it holds in memory at the row's version (what the row holds now).
    // No row lock (lockFree, the default): only the transaction holding the pump's log partition's checkpoint writes its
    // rows, and a rebuild takes the same checkpoints before it empties the tables; FOR UPDATE wrote a lock per row.
    // The page's serials are joined as a set (unnest), not filtered with = ANY: on a table PostgreSQL believes small
    // (a rebuild, before autovacuum has analysed it) the plan is a scan either way, and = ANY compares every row with
    // every serial of the page (5.1 ms for 98 of 2,000 pumps against 0.7 ms joined; docs/benchmarks.md).
    // The fourth map (knownRows) is each page pump's newest pf_daily_flow day at the page's start (DateOnly.MinValue: no
    // row): a pump without a status row has none (both are written by the same page transactions), a pump held in memory
    // has what this worker last wrote, and the others' is read here, with their stored folds.
    private async Task<(Dictionary<string, PumpState> States, Dictionary<string, long> StateVersions, Dictionary<string, ColdColumns> Written, Dictionary<string, DateOnly> NewestFlowDays)> CompleteLoadAsync(
        NpgsqlConnection conn, NpgsqlTransaction tx, RowLoad loaded, bool knownRows, CancellationToken ct)
    {
        var states = loaded.States;
        var misses = loaded.Misses;
        var newestFlowDays = new Dictionary<string, DateOnly>(StringComparer.Ordinal);
        if (knownRows)
        {
            foreach (var serial in loaded.Serials)
            {
                if (!loaded.StateVersions.ContainsKey(serial))
                {
                    newestFlowDays[serial] = DateOnly.MinValue;
                }
                else if (loaded.NewestFlowDays.TryGetValue(serial, out var day))
                {
                    newestFlowDays[serial] = day;
                }
            }
        }

        if (misses.Count > 0)
        {
            var stored = new Dictionary<string, PumpState>(StringComparer.Ordinal);
            var missed = misses.Select(m => m.Serial).ToArray();
            await using (var batch = new NpgsqlBatch(conn, tx))
            {
                var folds = new NpgsqlBatchCommand("SELECT serial, state::text FROM pf_pump_fold WHERE serial = ANY($1)");
                folds.Parameters.Add(new() { Value = missed });
                batch.BatchCommands.Add(folds);
                if (knownRows)
                {
                    // A backward scan of the primary key's (serial, day) per pump; none for a pump without flow rows yet.
                    var days = new NpgsqlBatchCommand("SELECT k.serial, (SELECT max(f.day) FROM pf_daily_flow f WHERE f.serial = k.serial) FROM unnest($1::text[]) AS k(serial)");
                    days.Parameters.Add(new() { Value = missed });
                    batch.BatchCommands.Add(days);
                }

                await using var r = await batch.ExecuteReaderAsync(ct);
                while (await r.ReadAsync(ct))
                {
                    var state = JsonSerializer.Deserialize<PumpState>(r.GetString(1), SnapshotJson.Options) ?? new PumpState();
                    state.Serial = r.GetString(0);
                    stored[state.Serial] = state;
                }

                if (knownRows && await r.NextResultAsync(ct))
                {
                    while (await r.ReadAsync(ct))
                    {
                        newestFlowDays[r.GetString(0)] = r.IsDBNull(1) ? DateOnly.MinValue : r.GetFieldValue<DateOnly>(1);
                    }
                }
            }

            foreach (var (serial, version) in misses)
            {
                // No stored state yet (a pump stores its first after StateEvery events): fold the stream from its start.
                var state = stored.GetValueOrDefault(serial) ?? new PumpState { Serial = serial };
                if (state.Version < version)
                {
                    state = await FoldForwardAsync(state, version, ct);
                }

                states[serial] = state;
            }
        }

        return (states, loaded.StateVersions, loaded.Written, newestFlowDays);
    }

    // The read of a page's status rows (with their stored fold's version), in the checkpoint lock's round trip or in its
    // own; a row whose version this worker holds in memory is a hit, the others are folded by CompleteLoadAsync.
    private sealed class RowLoad(PumpProjection owner, string[] serials, bool lockFree, bool genericPlans) : PageLoad
    {
        public string[] Serials { get; } = serials;

        public Dictionary<string, PumpState> States { get; } = new(StringComparer.Ordinal);

        public Dictionary<string, long> StateVersions { get; } = new(StringComparer.Ordinal);

        public Dictionary<string, ColdColumns> Written { get; } = new(StringComparer.Ordinal);

        // The newest pf_daily_flow day of each pump held in memory at the row's version, as this worker last wrote it.
        public Dictionary<string, DateOnly> NewestFlowDays { get; } = new(StringComparer.Ordinal);

        public List<(string Serial, long Version)> Misses { get; } = [];

        public override IReadOnlyList<NpgsqlBatchCommand> Commands
        {
            get
            {
                var commands = new List<NpgsqlBatchCommand>(2);
                if (genericPlans)
                {
                    // For the rest of the page's transaction: the load, the page's writes and the engine's checkpoint
                    // statements (all auto-prepared) run their plan cached at the first execution, not one planned anew for
                    // every page (a custom plan per execution is what PostgreSQL picks for statements over unnest(array
                    // parameters), whose row counts it knows only from the values).
                    commands.Add(new NpgsqlBatchCommand("SET LOCAL plan_cache_mode = force_generic_plan"));
                }

                var select = new NpgsqlBatchCommand(lockFree ? LoadSql : LoadSql + " FOR UPDATE OF s");
                select.Parameters.Add(new() { Value = Serials });
                commands.Add(select);
                return commands;
            }
        }

        public override async Task ReadAsync(NpgsqlDataReader reader, CancellationToken ct)
        {
            ArgumentNullException.ThrowIfNull(reader);
            while (await reader.ReadAsync(ct))
            {
                var serial = reader.GetString(0);
                var version = reader.GetInt64(1);
                StateVersions[serial] = reader.GetInt64(2);
                if (owner._cache.TryGetValue(serial, out var c) && c.Version == version)
                {
                    States[serial] = c.State;
                    Written[serial] = c.Written;
                    if (c.NewestFlowDay is { } day)
                    {
                        NewestFlowDays[serial] = day;
                    }
                }
                else
                {
                    Misses.Add((serial, version));
                }
            }
        }
    }

    private const string LoadSql = """
        SELECT s.serial, s.version, coalesce(f.state_version, 0)
        FROM unnest($1::text[]) AS k(serial) JOIN pf_pump_status s ON s.serial = k.serial LEFT JOIN pf_pump_fold f ON f.serial = s.serial
        """;

    // The stored state is older than the row: fold the events after it up to the row's version, as the pages did.
    // They are all committed (the row was written from them), so the event store's stream read sees them.
    private async Task<PumpState> FoldForwardAsync(PumpState state, long toVersion, CancellationToken ct)
    {
        var serial = state.Serial;
        await foreach (var e in events.ReadStreamAsync(serial, state.Version, ct))
        {
            if (e.Version > toVersion)
            {
                break;
            }

            state.Apply(EventJson.Deserialize(e.Type, e.Data), new EventEnvelope(e.Version, e.Seq, e.ReceivedAt, e.ClockSuspect));
            if (state.NeedsRebuild)
            {
                state = await ReplayAsync(serial, e.Version, ct);
            }
        }

        return state;
    }

    // A late event from before the fold window: re-fold the stream in seq order. Every version up to this page's
    // event is committed (the global reader hands out nothing else), so the event store's own stream read sees it.
    private async Task<PumpState> ReplayAsync(string serial, long toVersion, CancellationToken ct)
    {
        var state = PumpState.StartReplay(serial);
        await foreach (var e in events.ReadStreamAsync(serial, 0, ct))
        {
            if (e.Version > toVersion)
            {
                break;
            }

            state.Apply(EventJson.Deserialize(e.Type, e.Data), new EventEnvelope(e.Version, e.Seq, e.ReceivedAt, e.ClockSuspect));
        }

        state.FinishReplay();
        return state;
    }

    private sealed class FlowDelta
    {
        public double Programmed { get; set; }
        public double Delivered { get; set; }
        public double Measured { get; set; }
        public int MeasuredSamples { get; set; }
        public int Refills { get; set; }
        public double? ReservoirEnd { get; set; }
    }
}
