using System.Text.Json;
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
/// row's <c>version</c> tells whether the memory is still the committed fold. The jsonb <c>state</c> is written only
/// every <see cref="StateEvery"/> events of a pump (and for a new pump), with <c>state_version</c>: a worker without
/// the pump in memory folds the events after <c>state_version</c> from the log, so the writes per page are the
/// columns the API serves, not the whole folded state.
/// </summary>
public sealed class PumpProjection(IEventReader events) : IProjection
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

    private readonly System.Collections.Concurrent.ConcurrentDictionary<string, PumpState> _cache = new(StringComparer.Ordinal);

    /// <inheritdoc />
    public string Name => ProjectionName;

    /// <inheritdoc />
    public IReadOnlyList<string> Tables { get; } = ["pf_pump_status", "pf_daily_flow", "pf_alarm_log"];

    /// <inheritdoc />
    public async Task ApplyAsync(NpgsqlConnection conn, NpgsqlTransaction tx, IReadOnlyList<StoredEvent> events, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(events);
        // Fleet-level streams (cohort signals) are not pumps; the anomaly projection still sees them.
        events = [.. events.Where(e => Contracts.StreamIds.IsPump(e.StreamId))];
        var serials = events.Select(e => e.StreamId).Distinct(StringComparer.Ordinal).ToArray();
        try
        {
            await ApplyCoreAsync(conn, tx, events, serials, ct);
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

    private async Task ApplyCoreAsync(NpgsqlConnection conn, NpgsqlTransaction tx, IReadOnlyList<StoredEvent> events, string[] serials, CancellationToken ct)
    {
        var (states, stateVersions) = await LoadStatesAsync(conn, tx, serials, ct);
        var flows = new Dictionary<(string Serial, DateOnly Day), FlowDelta>();
        var batch = new NpgsqlBatch(conn, tx);
        var changed = new HashSet<string>(StringComparer.Ordinal);
        var replayed = new HashSet<string>(StringComparer.Ordinal);

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
                AddAlarmCommand(batch, stored, d);
            }
        }

        if (_cache.Count + changed.Count > CacheLimit)
        {
            _cache.Clear();
        }

        foreach (var serial in changed)
        {
            var state = states[serial];
            // A new pump (no row) needs its state, and so does one whose stream was just replayed (the costliest fold to
            // repeat); otherwise only every StateEvery events.
            var writeState = !stateVersions.TryGetValue(serial, out var stored) || state.Version - stored >= StateEvery || replayed.Contains(serial);
            AddStatusUpsert(batch, state, writeState);
            _cache[serial] = state;
        }

        foreach (var ((serial, day), f) in flows)
        {
            var cmd = new NpgsqlBatchCommand("""
                INSERT INTO pf_daily_flow (serial, day, delivered_ml, programmed_ml, measured_ml, measured_samples, reservoir_ml_end, refills)
                VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
                ON CONFLICT (serial, day) DO UPDATE SET
                    delivered_ml = pf_daily_flow.delivered_ml + excluded.delivered_ml,
                    programmed_ml = pf_daily_flow.programmed_ml + excluded.programmed_ml,
                    measured_ml = pf_daily_flow.measured_ml + excluded.measured_ml,
                    measured_samples = pf_daily_flow.measured_samples + excluded.measured_samples,
                    reservoir_ml_end = coalesce(excluded.reservoir_ml_end, pf_daily_flow.reservoir_ml_end),
                    refills = pf_daily_flow.refills + excluded.refills
                """);
            cmd.Parameters.Add(new() { Value = serial });
            cmd.Parameters.Add(new() { Value = day });
            cmd.Parameters.Add(new() { Value = f.Delivered });
            cmd.Parameters.Add(new() { Value = f.Programmed });
            cmd.Parameters.Add(new() { Value = f.Measured });
            cmd.Parameters.Add(new() { Value = f.MeasuredSamples });
            cmd.Parameters.Add(new() { Value = (object?)f.ReservoirEnd ?? DBNull.Value, NpgsqlDbType = NpgsqlDbType.Double });
            cmd.Parameters.Add(new() { Value = f.Refills });
            batch.BatchCommands.Add(cmd);
        }

        if (batch.BatchCommands.Count > 0)
        {
            await batch.ExecuteNonQueryAsync(ct);
        }

        await batch.DisposeAsync();
    }

    private static void AddAlarmCommand(NpgsqlBatch batch, StoredEvent stored, DeviceEvent d)
    {
        switch (d)
        {
            case AlarmRaised x:
            {
                var cmd = new NpgsqlBatchCommand("""
                    INSERT INTO pf_alarm_log (serial, seq, code, severity, raised_at) VALUES ($1, $2, $3, $4, $5)
                    ON CONFLICT (serial, seq) DO NOTHING
                    """);
                cmd.Parameters.Add(new() { Value = stored.StreamId });
                cmd.Parameters.Add(new() { Value = x.Seq });
                cmd.Parameters.Add(new() { Value = x.Code });
                cmd.Parameters.Add(new() { Value = x.Severity });
                cmd.Parameters.Add(new() { Value = x.At.ToUniversalTime() });
                batch.BatchCommands.Add(cmd);
                break;
            }

            case AlarmCleared x:
            {
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

    private static void AddStatusUpsert(NpgsqlBatch batch, PumpState state, bool writeState)
    {
        var view = state.ToView();
        // $21 is null when the state is not due: the row keeps its older state and state_version. (NOT NULL is checked
        // on the proposed row before ON CONFLICT, hence the placeholder '{}' that only a new row could ever keep, and a
        // new pump always writes its state.)
        var cmd = new NpgsqlBatchCommand("""
            INSERT INTO pf_pump_status (serial, hub_id, model, firmware, lot, phase, drug, status, reservoir_ml, forecast_empty_at,
                next_refill_due_at, active_alarms, active_alarm_codes, open_anomalies, last_seen_at, last_event_at, last_seq,
                battery_pct, critical, version, state, state_version, updated_at, low_reservoir_at, forecast_from, reservoir_capacity_ml,
                concentration_value, concentration_unit, refill_flow_factor, refill_flow_at, refill_flow_cycle_ml,
                delivered_since_refill_ml, forecast_rate_ml_per_day, low_reservoir_ml, next_refill_due_source, uncorrected_refill_due_at,
                flow_factor, flow_cohort, flow_anomaly_id)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, coalesce($21::jsonb, '{}'::jsonb), $20, now(),
                $22, $23, $24, $25, $26, $27, $28, $29, $30, $31, $32, $33, $34, $35, $36, $37)
            ON CONFLICT (serial) DO UPDATE SET hub_id = excluded.hub_id, model = excluded.model, firmware = excluded.firmware,
                lot = excluded.lot, phase = excluded.phase, drug = excluded.drug, status = excluded.status,
                reservoir_ml = excluded.reservoir_ml, forecast_empty_at = excluded.forecast_empty_at,
                next_refill_due_at = excluded.next_refill_due_at, active_alarms = excluded.active_alarms,
                active_alarm_codes = excluded.active_alarm_codes, open_anomalies = excluded.open_anomalies,
                last_seen_at = excluded.last_seen_at, last_event_at = excluded.last_event_at, last_seq = excluded.last_seq,
                battery_pct = excluded.battery_pct, critical = excluded.critical, version = excluded.version,
                state = CASE WHEN $21::text IS NULL THEN pf_pump_status.state ELSE excluded.state END,
                state_version = CASE WHEN $21::text IS NULL THEN pf_pump_status.state_version ELSE excluded.state_version END,
                updated_at = now(), low_reservoir_at = excluded.low_reservoir_at,
                forecast_from = excluded.forecast_from, reservoir_capacity_ml = excluded.reservoir_capacity_ml,
                concentration_value = excluded.concentration_value, concentration_unit = excluded.concentration_unit,
                refill_flow_factor = excluded.refill_flow_factor, refill_flow_at = excluded.refill_flow_at,
                refill_flow_cycle_ml = excluded.refill_flow_cycle_ml, delivered_since_refill_ml = excluded.delivered_since_refill_ml,
                forecast_rate_ml_per_day = excluded.forecast_rate_ml_per_day, low_reservoir_ml = excluded.low_reservoir_ml,
                next_refill_due_source = excluded.next_refill_due_source, uncorrected_refill_due_at = excluded.uncorrected_refill_due_at,
                flow_factor = excluded.flow_factor, flow_cohort = excluded.flow_cohort, flow_anomaly_id = excluded.flow_anomaly_id
            """);
        cmd.Parameters.Add(new() { Value = view.Serial });
        cmd.Parameters.Add(Text(view.HubId));
        cmd.Parameters.Add(Text(view.Model));
        cmd.Parameters.Add(Text(view.Firmware));
        cmd.Parameters.Add(Text(view.Lot));
        cmd.Parameters.Add(Text(view.Phase));
        cmd.Parameters.Add(Text(view.Drug));
        cmd.Parameters.Add(new() { Value = view.Status });
        cmd.Parameters.Add(new() { Value = (object?)view.ReservoirMl ?? DBNull.Value, NpgsqlDbType = NpgsqlDbType.Double });
        cmd.Parameters.Add(Time(view.ForecastEmptyAt));
        cmd.Parameters.Add(Time(view.NextRefillDueAt));
        cmd.Parameters.Add(new() { Value = view.ActiveAlarms.Count });
        cmd.Parameters.Add(new() { Value = view.ActiveAlarms.Select(a => a.Code).ToArray(), NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Text });
        cmd.Parameters.Add(new() { Value = view.OpenAnomalies.Count });
        cmd.Parameters.Add(Time(view.LastSeenAt));
        cmd.Parameters.Add(Time(view.LastEventAt));
        cmd.Parameters.Add(new() { Value = view.LastSeq });
        cmd.Parameters.Add(new() { Value = (object?)view.BatteryPct ?? DBNull.Value, NpgsqlDbType = NpgsqlDbType.Double });
        cmd.Parameters.Add(new() { Value = view.Status == Contracts.Views.PumpStatuses.Critical });
        cmd.Parameters.Add(new() { Value = state.Version });
        cmd.Parameters.Add(new()
        {
            Value = writeState ? JsonSerializer.Serialize(state, SnapshotJson.Options) : DBNull.Value,
            NpgsqlDbType = NpgsqlDbType.Text,
        });
        cmd.Parameters.Add(Time(view.LowReservoirAt));
        cmd.Parameters.Add(Time(view.ForecastFrom));
        cmd.Parameters.Add(Double(view.ReservoirCapacityMl));
        cmd.Parameters.Add(Double(view.Prescription?.Concentration.Value));
        cmd.Parameters.Add(Text(view.Prescription?.Concentration.Unit));

        // The last complete cycle's flow factor: the cohort-flow job's sample (pure rule in Domain, minimum cycle 0.1 mL
        // here; the job applies the configured minimum when it reads).
        var refill = state.Detectors.Refill;
        var factor = RefillFlow.FactorOf(refill, 0.1);
        cmd.Parameters.Add(Double(factor));
        cmd.Parameters.Add(Time(factor is null ? null : refill.LastRefillAt));
        cmd.Parameters.Add(Double(factor is null ? null : refill.CycleDeliveredMl));
        cmd.Parameters.Add(Double(view.Ledger.DeliveredSinceRefillMl));
        cmd.Parameters.Add(Double(view.Ledger.ForecastRateMlPerDay));
        cmd.Parameters.Add(Double(view.LowReservoirMl));

        // The due date above is already corrected when the pump's cohort correction brings it forward; these say so.
        cmd.Parameters.Add(Text(view.NextRefillDueSource));
        cmd.Parameters.Add(Time(view.UncorrectedNextRefillDueAt));
        var held = state.FlowCorrection?.ToCorrection();
        cmd.Parameters.Add(Double(held?.Factor));
        cmd.Parameters.Add(Text(held?.Cohort.StreamId));
        cmd.Parameters.Add(Text(held?.AnomalyId));
        batch.BatchCommands.Add(cmd);
    }

    private static NpgsqlParameter Double(double? v) => new() { Value = (object?)v ?? DBNull.Value, NpgsqlDbType = NpgsqlDbType.Double };

    private static NpgsqlParameter Text(string? v) => new() { Value = (object?)v ?? DBNull.Value, NpgsqlDbType = NpgsqlDbType.Text };

    private static NpgsqlParameter Time(DateTimeOffset? v) =>
        new() { Value = v is { } t ? t.ToUniversalTime() : DBNull.Value, NpgsqlDbType = NpgsqlDbType.TimestampTz };

    // Locks the page's pump rows and returns each pump's fold at the row's version: from memory when it holds exactly
    // that version, otherwise the stored state (at state_version) plus the events after it, read from the log. The
    // second map is each row's state_version (pumps without a row are absent from it).
    private async Task<(Dictionary<string, PumpState> States, Dictionary<string, long> StateVersions)> LoadStatesAsync(
        NpgsqlConnection conn, NpgsqlTransaction tx, string[] serials, CancellationToken ct)
    {
        var states = new Dictionary<string, PumpState>(StringComparer.Ordinal);
        var stateVersions = new Dictionary<string, long>(StringComparer.Ordinal);
        var misses = new List<(string Serial, long Version)>();
        await using (var cmd = new NpgsqlCommand("SELECT serial, version, state_version FROM pf_pump_status WHERE serial = ANY($1) FOR UPDATE", conn, tx))
        {
            cmd.Parameters.Add(new() { Value = serials });
            await using var r = await cmd.ExecuteReaderAsync(ct);
            while (await r.ReadAsync(ct))
            {
                var serial = r.GetString(0);
                var version = r.GetInt64(1);
                stateVersions[serial] = r.GetInt64(2);
                if (_cache.TryGetValue(serial, out var c) && c.Version == version)
                {
                    states[serial] = c;
                }
                else
                {
                    misses.Add((serial, version));
                }
            }
        }

        if (misses.Count > 0)
        {
            var stored = new Dictionary<string, PumpState>(StringComparer.Ordinal);
            await using (var cmd = new NpgsqlCommand("SELECT serial, state::text FROM pf_pump_status WHERE serial = ANY($1)", conn, tx))
            {
                cmd.Parameters.Add(new() { Value = misses.Select(m => m.Serial).ToArray() });
                await using var r = await cmd.ExecuteReaderAsync(ct);
                while (await r.ReadAsync(ct))
                {
                    var state = JsonSerializer.Deserialize<PumpState>(r.GetString(1), SnapshotJson.Options) ?? new PumpState();
                    state.Serial = r.GetString(0);
                    stored[state.Serial] = state;
                }
            }

            foreach (var (serial, version) in misses)
            {
                var state = stored[serial];
                if (state.Version < version)
                {
                    state = await FoldForwardAsync(state, version, ct);
                }

                states[serial] = state;
            }
        }

        return (states, stateVersions);
    }

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
