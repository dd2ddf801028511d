using System.Globalization;
using System.Text;
using System.Text.Json;
using Npgsql;
using NpgsqlTypes;
using PumpFleet.Projections;

namespace PumpFleet.ReadModels;

/// <summary>
/// The SQL behind the API's read-model endpoints: the read models' owner answers questions about its tables
/// (<see cref="IReadModelQueries"/>); the Dashboard writes no SQL of its own.
/// </summary>
public sealed class ReadModelQueries(NpgsqlDataSource dataSource, ProjectionProgressStore progress) : IReadModelQueries
{
    /// <summary>Sort keys of the fleet list and their SQL; every order ends with serial so pages are stable.</summary>
    public static readonly IReadOnlyDictionary<string, string> PumpSorts = new Dictionary<string, string>(StringComparer.Ordinal)
    {
        ["attention"] = PumpStatusRank.Sql,
        ["serial"] = "serial",
        ["status"] = "status",
        ["lastSeenAt"] = "last_seen_at",
        ["reservoirMl"] = "reservoir_ml",
        ["forecastEmptyAt"] = "forecast_empty_at",
        ["nextRefillDueAt"] = "next_refill_due_at",
        ["model"] = "model",
    };

    /// <summary>
    /// Sorts whose column is indexed through its UTC day (migration 060: the exact timestamps change with nearly every
    /// event, so an index on them made every status update write it): the list orders by the day first, which is the
    /// same order (the day is monotone in the timestamp and null exactly when it is), so PostgreSQL can read the day's
    /// index and sort only within each day.
    /// </summary>
    public static readonly IReadOnlyDictionary<string, string> PumpSortDays = new Dictionary<string, string>(StringComparer.Ordinal)
    {
        ["forecastEmptyAt"] = "forecast_empty_day",
        ["nextRefillDueAt"] = "refill_due_day",
    };

    /// <inheritdoc />
    public IReadOnlyCollection<string> PumpSortKeys { get; } = [.. PumpSorts.Keys];

    private const string SummaryColumns = """
        serial, hub_id, model, firmware, lot, phase, drug, status, reservoir_ml, forecast_empty_at, active_alarms, open_anomalies,
        last_seen_at, next_refill_due_at, active_alarm_codes, last_event_at, last_seq, battery_pct,
        th.therapy_id, th.therapy_phase, th.pump_implanted_at, th.pump_explanted_at
        """;

    // The therapy columns of a pump row: the pump's therapy (if any) and that therapy's phase. Named so that nothing
    // collides with pf_pump_status's own columns, which the filters and orders name unqualified.
    private const string SummaryFrom = """
        pf_pump_status LEFT JOIN LATERAL (
            SELECT tp.therapy_id, t.phase AS therapy_phase, tp.implanted_at AS pump_implanted_at, tp.explanted_at AS pump_explanted_at
            FROM pf_therapy_pumps tp JOIN pf_therapies t ON t.id = tp.therapy_id
            WHERE tp.serial = pf_pump_status.serial) th ON true
        """;

    /// <inheritdoc />
    public async Task<PagedResult<PumpSummary>> ListPumpsAsync(PumpFilter filter, string sort, bool descending, int page, int pageSize, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(filter);
        var where = new StringBuilder("WHERE true");
        var parameters = new List<NpgsqlParameter>();
        void Add(string column, string? value)
        {
            if (value is not null)
            {
                parameters.Add(new NpgsqlParameter { Value = value });
                where.Append(CultureInfo.InvariantCulture, $" AND {column} = ${parameters.Count}");
            }
        }

        Add("status", filter.Status);
        Add("model", filter.Model);
        Add("firmware", filter.Firmware);
        Add("lot", filter.Lot);
        if (filter.Search is { Length: > 0 } q)
        {
            // Prefix match on the primary key: escaped so that % and _ in the input are literal.
            parameters.Add(new NpgsqlParameter { Value = q.Replace("\\", "\\\\", StringComparison.Ordinal).Replace("%", "\\%", StringComparison.Ordinal).Replace("_", "\\_", StringComparison.Ordinal) + "%" });
            where.Append(CultureInfo.InvariantCulture, $" AND serial LIKE ${parameters.Count}");
        }

        var dir = descending ? "DESC" : "ASC";
        var order = sort == "serial" ? $"serial {dir}" : $"{PumpSorts[sort]} {dir} NULLS LAST, serial {dir}";
        if (PumpSortDays.TryGetValue(sort, out var day))
        {
            order = $"{day} {dir} NULLS LAST, {order}";
        }

        await using var conn = await dataSource.OpenConnectionAsync(ct);
        long total;
        await using (var count = new NpgsqlCommand($"SELECT count(*) FROM pf_pump_status {where}", conn))
        {
            count.Parameters.AddRange(parameters.Select(p => p.Clone()).ToArray());
            total = (long)(await count.ExecuteScalarAsync(ct) ?? 0L);
        }

        await using var cmd = new NpgsqlCommand($"SELECT {SummaryColumns} FROM {SummaryFrom} {where} ORDER BY {order} LIMIT {pageSize} OFFSET {(long)(page - 1) * pageSize}", conn);
        cmd.Parameters.AddRange(parameters.ToArray());
        var items = new List<PumpSummary>(pageSize);
        await using var r = await cmd.ExecuteReaderAsync(ct);
        while (await r.ReadAsync(ct))
        {
            items.Add(ReadSummary(r));
        }

        return new PagedResult<PumpSummary>(items, page, pageSize, total);
    }

    /// <inheritdoc />
    public async Task<PumpSummary?> GetPumpAsync(string serial, CancellationToken ct)
    {
        await using var cmd = dataSource.CreateCommand($"SELECT {SummaryColumns} FROM {SummaryFrom} WHERE pf_pump_status.serial = $1");
        cmd.Parameters.Add(new() { Value = serial });
        await using var r = await cmd.ExecuteReaderAsync(ct);
        return await r.ReadAsync(ct) ? ReadSummary(r) : null;
    }

    /// <inheritdoc />
    public async Task<IReadOnlyDictionary<string, IReadOnlyList<string>>> FacetsAsync(CancellationToken ct)
    {
        var result = new Dictionary<string, IReadOnlyList<string>>(StringComparer.Ordinal);
        await using var conn = await dataSource.OpenConnectionAsync(ct);
        foreach (var column in new[] { "model", "firmware", "lot" })
        {
            // Read from the small cohort table rather than scanning every pump.
            await using var cmd = new NpgsqlCommand($"SELECT DISTINCT {column} FROM pf_cohort_stats ORDER BY 1 LIMIT 500", conn);
            var values = new List<string>();
            await using var r = await cmd.ExecuteReaderAsync(ct);
            while (await r.ReadAsync(ct))
            {
                values.Add(r.GetString(0));
            }

            result[column] = values;
        }

        return result;
    }

    /// <inheritdoc />
    public async Task<IReadOnlyList<(DateOnly Day, double Delivered, double Programmed, double Measured, int Samples, double? ReservoirEnd, int Refills)>> DailyFlowAsync(
        string serial, DateOnly from, DateOnly to, CancellationToken ct)
    {
        await using var cmd = dataSource.CreateCommand("""
            SELECT day, delivered_ml, programmed_ml, measured_ml, measured_samples, reservoir_ml_end, refills
              FROM pf_daily_flow WHERE serial = $1 AND day BETWEEN $2 AND $3 ORDER BY day
            """);
        cmd.Parameters.Add(new() { Value = serial });
        cmd.Parameters.Add(new() { Value = from });
        cmd.Parameters.Add(new() { Value = to });
        var rows = new List<(DateOnly, double, double, double, int, double?, int)>();
        await using var r = await cmd.ExecuteReaderAsync(ct);
        while (await r.ReadAsync(ct))
        {
            rows.Add((r.GetFieldValue<DateOnly>(0), r.GetDouble(1), r.GetDouble(2), r.GetDouble(3), r.GetInt32(4),
                r.IsDBNull(5) ? null : r.GetDouble(5), r.GetInt32(6)));
        }

        return rows;
    }

    /// <inheritdoc />
    public async Task<DateOnly?> LastFlowDayAsync(string serial, CancellationToken ct)
    {
        await using var cmd = dataSource.CreateCommand("SELECT max(day) FROM pf_daily_flow WHERE serial = $1");
        cmd.Parameters.Add(new() { Value = serial });
        var v = await cmd.ExecuteScalarAsync(ct);
        return v is DateOnly d ? d : null;
    }

    /// <inheritdoc />
    public async Task<IReadOnlyList<AnomalyItem>> ListAnomaliesAsync(string? status, string? kind, string? severity, string? serial, int limit, CancellationToken ct)
    {
        await using var cmd = dataSource.CreateCommand("""
            SELECT id, serial, kind, severity, status, detected_at, evidence::text, summary, acknowledged_by, acknowledged_at,
                   resolved_by, resolved_at, note
              FROM pf_anomalies
             WHERE ($1::text IS NULL OR status = $1) AND ($2::text IS NULL OR kind = $2) AND ($3::text IS NULL OR severity = $3)
               AND ($4::text IS NULL OR serial = $4)
             ORDER BY (CASE severity WHEN 'critical' THEN 0 WHEN 'warning' THEN 1 ELSE 2 END), detected_at DESC, id
             LIMIT $5
            """);
        cmd.Parameters.Add(Text(status));
        cmd.Parameters.Add(Text(kind));
        cmd.Parameters.Add(Text(severity));
        cmd.Parameters.Add(Text(serial));
        cmd.Parameters.Add(new() { Value = limit });
        var list = new List<AnomalyItem>();
        await using var r = await cmd.ExecuteReaderAsync(ct);
        while (await r.ReadAsync(ct))
        {
            list.Add(ReadAnomaly(r));
        }

        return list;
    }

    /// <inheritdoc />
    public async Task<AnomalyItem?> GetAnomalyAsync(string id, CancellationToken ct)
    {
        await using var cmd = dataSource.CreateCommand("""
            SELECT id, serial, kind, severity, status, detected_at, evidence::text, summary, acknowledged_by, acknowledged_at,
                   resolved_by, resolved_at, note
              FROM pf_anomalies WHERE id = $1
            """);
        cmd.Parameters.Add(new() { Value = id });
        await using var r = await cmd.ExecuteReaderAsync(ct);
        return await r.ReadAsync(ct) ? ReadAnomaly(r) : null;
    }

    /// <inheritdoc />
    public async Task<IReadOnlyList<WorklistRow>> RefillCandidatesAsync(
        DateTimeOffset until, string? hubId, int limit, CancellationToken ct, IReadOnlyList<string>? hubIds = null)
    {
        // pf_pump_status_refill_day (the due date's UTC day, migration 060) serves the range and the order (by the day
        // first: the same order); explanted pumps need no refill. The date is stored already corrected by the pump's
        // cohort flow correction, when that brings it forward.
        await using var cmd = dataSource.CreateCommand("""
            SELECT serial, hub_id, model, firmware, lot, drug, concentration_value, concentration_unit, reservoir_capacity_ml,
                   reservoir_ml, next_refill_due_at, low_reservoir_at, forecast_from, status, delivered_since_refill_ml,
                   forecast_rate_ml_per_day, low_reservoir_ml, next_refill_due_source, uncorrected_refill_due_at, flow_factor,
                   flow_cohort, flow_anomaly_id
              FROM pf_pump_status
             WHERE refill_due_day <= ($1 AT TIME ZONE 'UTC')::date AND next_refill_due_at <= $1 AND status <> 'inactive'
               AND ($2::text IS NULL OR hub_id = $2) AND ($4::text[] IS NULL OR hub_id = ANY($4))
             ORDER BY refill_due_day, next_refill_due_at, serial LIMIT $3
            """);
        cmd.Parameters.Add(new() { Value = until.ToUniversalTime(), NpgsqlDbType = NpgsqlDbType.TimestampTz });
        cmd.Parameters.Add(Text(hubId));
        cmd.Parameters.Add(new() { Value = limit });
        cmd.Parameters.Add(Hubs(hubIds));
        var list = new List<WorklistRow>();
        await using var r = await cmd.ExecuteReaderAsync(ct);
        while (await r.ReadAsync(ct))
        {
            list.Add(new WorklistRow(r.GetString(0), Str(r, 1), Str(r, 2), Str(r, 3), Str(r, 4), Str(r, 5), Dbl(r, 6), Str(r, 7), Dbl(r, 8),
                Dbl(r, 9), r.GetFieldValue<DateTimeOffset>(10), Tim(r, 11), Tim(r, 12), r.GetString(13), Dbl(r, 14), Dbl(r, 15), Dbl(r, 16),
                Str(r, 17), Tim(r, 18), Dbl(r, 19), Str(r, 20), Str(r, 21)));
        }

        return list;

        static string? Str(NpgsqlDataReader r, int i) => r.IsDBNull(i) ? null : r.GetString(i);
        static double? Dbl(NpgsqlDataReader r, int i) => r.IsDBNull(i) ? null : r.GetDouble(i);
        static DateTimeOffset? Tim(NpgsqlDataReader r, int i) => r.IsDBNull(i) ? null : r.GetFieldValue<DateTimeOffset>(i);
    }

    /// <inheritdoc />
    public async Task<FleetOverview> FleetOverviewAsync(DateTimeOffset now, int days, TimeSpan silentAfter, CancellationToken ct, IReadOnlyList<string>? hubIds = null)
    {
        var today = DateOnly.FromDateTime(now.UtcDateTime);
        var first = today.AddDays(1 - days);
        var dayList = Enumerable.Range(0, days).Select(i => first.AddDays(i)).ToArray();
        var index = dayList.Select((d, i) => (d, i)).ToDictionary(x => x.d, x => x.i);
        await using var batch = dataSource.CreateBatch();

        // Open at the end of day d: detected before its end and not resolved by then.
        batch.BatchCommands.Add(new NpgsqlBatchCommand("""
            SELECT d::date, a.kind, count(*)
              FROM generate_series($1::date::timestamp, $2::date::timestamp, interval '1 day') AS d
              JOIN pf_anomalies a ON a.detected_at < (d + interval '1 day') AT TIME ZONE 'UTC'
                                 AND (a.resolved_at IS NULL OR a.resolved_at >= (d + interval '1 day') AT TIME ZONE 'UTC')
             WHERE ($3::text[] IS NULL OR a.serial IN (SELECT serial FROM pf_pump_status WHERE hub_id = ANY($3)))
             GROUP BY 1, 2
            """) { Parameters = { new() { Value = first }, new() { Value = today }, Hubs(hubIds) } });
        batch.BatchCommands.Add(new NpgsqlBatchCommand("""
            SELECT day, count(*) FROM pf_daily_flow
             WHERE day BETWEEN $1 AND $2 AND ($3::text[] IS NULL OR serial IN (SELECT serial FROM pf_pump_status WHERE hub_id = ANY($3)))
             GROUP BY day
            """) { Parameters = { new() { Value = first }, new() { Value = today }, Hubs(hubIds) } });
        batch.BatchCommands.Add(new NpgsqlBatchCommand("""
            SELECT CASE WHEN next_refill_due_at IS NULL THEN 'none'
                        WHEN next_refill_due_at < $1 THEN 'overdue'
                        WHEN next_refill_due_at < $1 + interval '7 days' THEN '0–7 d'
                        WHEN next_refill_due_at < $1 + interval '14 days' THEN '7–14 d'
                        WHEN next_refill_due_at < $1 + interval '30 days' THEN '14–30 d'
                        WHEN next_refill_due_at < $1 + interval '60 days' THEN '30–60 d'
                        ELSE '60 d+' END, count(*)
              FROM pf_pump_status WHERE status <> 'inactive' AND ($2::text[] IS NULL OR hub_id = ANY($2)) GROUP BY 1
            """) { Parameters = { new() { Value = now.ToUniversalTime(), NpgsqlDbType = NpgsqlDbType.TimestampTz }, Hubs(hubIds) } });
        batch.BatchCommands.Add(new NpgsqlBatchCommand("""
            SELECT count(*) FROM pf_pump_status WHERE status <> 'inactive' AND last_seen_at < $1 AND ($2::text[] IS NULL OR hub_id = ANY($2))
            """) { Parameters = { new() { Value = (now - silentAfter).ToUniversalTime(), NpgsqlDbType = NpgsqlDbType.TimestampTz }, Hubs(hubIds) } });

        // Events per day of receipt (the ingest projection) are counted per log partition, not per pump: the fleet's only.
        if (hubIds is null)
        {
            batch.BatchCommands.Add(new NpgsqlBatchCommand("SELECT day, sum(device_events)::bigint FROM pf_ingest_daily WHERE day BETWEEN $1 AND $2 GROUP BY day")
            { Parameters = { new() { Value = first }, new() { Value = today } } });
        }

        var byKind = new SortedDictionary<string, long[]>(StringComparer.Ordinal);
        var reporting = new long[days];
        var buckets = new Dictionary<string, long>(StringComparer.Ordinal);
        long silent = 0;
        await using var r = await batch.ExecuteReaderAsync(ct);
        while (await r.ReadAsync(ct))
        {
            var day = DateOnly.FromDateTime(r.GetDateTime(0));
            if (!byKind.TryGetValue(r.GetString(1), out var counts))
            {
                byKind[r.GetString(1)] = counts = new long[days];
            }

            counts[index[day]] = r.GetInt64(2);
        }

        await r.NextResultAsync(ct);
        while (await r.ReadAsync(ct))
        {
            reporting[index[r.GetFieldValue<DateOnly>(0)]] = r.GetInt64(1);
        }

        await r.NextResultAsync(ct);
        while (await r.ReadAsync(ct))
        {
            buckets[r.GetString(0)] = r.GetInt64(1);
        }

        await r.NextResultAsync(ct);
        if (await r.ReadAsync(ct))
        {
            silent = r.GetInt64(0);
        }

        long[]? deviceEvents = null;
        if (hubIds is null)
        {
            deviceEvents = new long[days];
            await r.NextResultAsync(ct);
            while (await r.ReadAsync(ct))
            {
                deviceEvents[index[r.GetFieldValue<DateOnly>(0)]] = r.GetInt64(1);
            }
        }

        string[] order = ["overdue", "0–7 d", "7–14 d", "14–30 d", "30–60 d", "60 d+", "none"];
        return new FleetOverview(now, dayList, byKind, reporting, [.. order.Select(b => (b, buckets.GetValueOrDefault(b)))], silent, deviceEvents);
    }

    /// <inheritdoc />
    public async Task<IReadOnlyList<AlarmItem>> ListAlarmsAsync(string? serial, bool activeOnly, string? severity, int limit, CancellationToken ct)
    {
        await using var cmd = dataSource.CreateCommand("""
            SELECT serial, seq, code, severity, raised_at, cleared_at FROM pf_alarm_log
             WHERE ($1::text IS NULL OR serial = $1) AND (NOT $2 OR cleared_at IS NULL) AND ($3::text IS NULL OR severity = $3)
             ORDER BY raised_at DESC, serial, seq LIMIT $4
            """);
        cmd.Parameters.Add(Text(serial));
        cmd.Parameters.Add(new() { Value = activeOnly });
        cmd.Parameters.Add(Text(severity));
        cmd.Parameters.Add(new() { Value = limit });
        var list = new List<AlarmItem>();
        await using var r = await cmd.ExecuteReaderAsync(ct);
        while (await r.ReadAsync(ct))
        {
            list.Add(new AlarmItem(r.GetString(0), r.GetInt64(1), r.GetString(2), r.GetString(3), r.GetFieldValue<DateTimeOffset>(4),
                r.IsDBNull(5) ? null : r.GetFieldValue<DateTimeOffset>(5)));
        }

        return list;
    }

    /// <inheritdoc />
    public async Task<IReadOnlyList<CohortRow>> CohortsAsync(IReadOnlyList<string> by, CancellationToken ct, IReadOnlyList<string>? hubIds = null)
    {
        ArgumentNullException.ThrowIfNull(by);
        if (by.Contains("implantAge"))
        {
            return await CohortsByImplantAgeAsync([.. by.Where(d => d != "implantAge")], hubIds, ct);
        }

        var dims = by.Select(CohortDimensions.Sql).ToList();
        var keys = string.Join(", ", dims.Select((d, i) => $"{d.Value} AS k{i}"));
        var group = string.Join(", ", dims.Select((_, i) => $"k{i}"));
        var order = string.Join(", ", dims.Select(d => $"min({d.Order})"));
        // One row per pump: pumps affected are members with at least one event of the measure. Pumps that have not
        // identified themselves belong to no cohort, as in pf_cohort_stats.
        await using var cmd = dataSource.CreateCommand($"""
            SELECT {keys}, count(*)::bigint,
                   coalesce(sum(extract(epoch FROM (last_event_at - first_event_at)) / 86400.0), 0)::float8,
                   sum(alarms)::bigint, count(*) FILTER (WHERE alarms > 0)::bigint,
                   sum(critical_alarms)::bigint, count(*) FILTER (WHERE critical_alarms > 0)::bigint,
                   sum(anomalies)::bigint, count(*) FILTER (WHERE anomalies > 0)::bigint
              FROM pf_cohort_members
             WHERE model IS NOT NULL AND {ClinicFilter}
             GROUP BY {group} ORDER BY {order}, {group}
            """);
        cmd.Parameters.Add(Hubs(hubIds));
        var list = new List<CohortRow>();
        await using var r = await cmd.ExecuteReaderAsync(ct);
        while (await r.ReadAsync(ct))
        {
            var key = new string[dims.Count];
            for (var i = 0; i < dims.Count; i++)
            {
                key[i] = r.GetString(i);
            }

            var o = dims.Count;
            list.Add(new CohortRow(key, r.GetInt64(o), r.GetDouble(o + 1), r.GetInt64(o + 2), r.GetInt64(o + 3), r.GetInt64(o + 4),
                r.GetInt64(o + 5), r.GetInt64(o + 6), r.GetInt64(o + 7)));
        }

        return list;
    }

    /// <summary>
    /// Cohorts with implant age as (the last) dimension: each pump's follow-up is split across the bands it lived
    /// through (<see cref="Domain.Statistics.ImplantAge.Split"/>), so a band's pump-days are the days pumps spent at
    /// that age; its alarms and anomalies are those that happened at that age (by the alarm log's raise time and the
    /// anomaly's detection time); a pump counts in every band it spent follow-up in (and one with none in the band of
    /// its last report, as before).
    /// </summary>
    private async Task<IReadOnlyList<CohortRow>> CohortsByImplantAgeAsync(IReadOnlyList<string> others, IReadOnlyList<string>? hubIds, CancellationToken ct)
    {
        var dims = others.Select(CohortDimensions.Sql).ToList();
        var keys = string.Concat(dims.Select((d, i) => $"{d.Value} AS k{i}, {d.Order} AS o{i}, "));
        var group = string.Concat(dims.Select((_, i) => $"m.k{i}, "));
        var order = string.Concat(dims.Select((_, i) => $"min(m.o{i}), m.k{i}, "));
        await using var cmd = dataSource.CreateCommand($"""
            WITH m AS (
                SELECT {keys} serial, implanted_at, first_event_at, last_event_at
                  FROM pf_cohort_members WHERE model IS NOT NULL AND {ClinicFilter}
            ), s AS ({CohortDimensions.ImplantAgeSegmentsSql}
            ), a AS (
                SELECT s.serial, s.band, count(*) AS alarms, count(*) FILTER (WHERE l.severity = 'critical') AS critical
                  FROM s JOIN pf_alarm_log l ON l.serial = s.serial AND l.raised_at >= s.lo AND l.raised_at < s.hi GROUP BY 1, 2
            ), n AS (
                SELECT s.serial, s.band, count(*) AS anomalies
                  FROM s JOIN pf_anomalies an ON an.serial = s.serial AND an.detected_at >= s.lo AND an.detected_at < s.hi GROUP BY 1, 2
            ), x AS (
                SELECT s.serial, s.band, s.band_order, s.days, coalesce(a.alarms, 0) AS alarms, coalesce(a.critical, 0) AS critical,
                       coalesce(n.anomalies, 0) AS anomalies
                  FROM s LEFT JOIN a ON a.serial = s.serial AND a.band = s.band LEFT JOIN n ON n.serial = s.serial AND n.band = s.band
                 WHERE s.days > 0 OR s.at_last OR a.alarms > 0 OR n.anomalies > 0
            )
            SELECT {group} x.band, count(*)::bigint, coalesce(sum(x.days), 0)::float8,
                   sum(x.alarms)::bigint, count(*) FILTER (WHERE x.alarms > 0)::bigint,
                   sum(x.critical)::bigint, count(*) FILTER (WHERE x.critical > 0)::bigint,
                   sum(x.anomalies)::bigint, count(*) FILTER (WHERE x.anomalies > 0)::bigint
              FROM x JOIN m ON m.serial = x.serial
             GROUP BY {group} x.band ORDER BY {order} min(x.band_order)
            """);
        cmd.Parameters.Add(Hubs(hubIds));
        var list = new List<CohortRow>();
        await using var r = await cmd.ExecuteReaderAsync(ct);
        while (await r.ReadAsync(ct))
        {
            var key = new string[dims.Count + 1];
            for (var i = 0; i <= dims.Count; i++)
            {
                key[i] = r.GetString(i);
            }

            var o = dims.Count + 1;
            list.Add(new CohortRow(key, r.GetInt64(o), r.GetDouble(o + 1), r.GetInt64(o + 2), r.GetInt64(o + 3), r.GetInt64(o + 4),
                r.GetInt64(o + 5), r.GetInt64(o + 6), r.GetInt64(o + 7)));
        }

        return list;
    }

    /// <inheritdoc />
    public async Task<SurvivalData> SurvivalAsync(IReadOnlyList<string> by, string endpoint, CancellationToken ct, IReadOnlyList<string>? hubIds = null)
    {
        ArgumentNullException.ThrowIfNull(by);
        ArgumentNullException.ThrowIfNull(endpoint);
        var dims = by.Select(CohortDimensions.Sql).ToList();
        var keys = dims.Count == 0 ? "" : string.Join(", ", dims.Select((d, i) => $"{d.Value} AS k{i}")) + ",";
        var carry = dims.Count == 0 ? "" : string.Join(", ", dims.Select((_, i) => $"k{i}")) + ",";
        // The end point's time: the explant, or the first failure of the kind. A failure end point is censored at
        // explant (the device left follow-up), any end point at the last report. Only the first occurrence of a
        // kind is kept per pump, so a pump whose first one came before its implant (a trial) cannot be followed.
        await using var conn = await dataSource.OpenConnectionAsync(ct);
        var rows = new List<SurvivalRow>();
        await using (var cmd = new NpgsqlCommand($"""
            WITH f AS (
                SELECT {keys} implanted_at AS t0, last_event_at, explanted_at,
                       CASE WHEN $1 = 'explant' THEN explanted_at ELSE (first_failures ->> $1)::timestamptz END AS hit
                  FROM pf_cohort_members
                 WHERE model IS NOT NULL AND implanted_at IS NOT NULL AND last_event_at IS NOT NULL AND {ClinicFilter.Replace("$1", "$2", StringComparison.Ordinal)}
            ), o AS (
                SELECT {carry} t0, hit IS NOT NULL AND ($1 = 'explant' OR explanted_at IS NULL OR hit <= explanted_at) AS failed,
                       hit, CASE WHEN $1 = 'explant' THEN last_event_at ELSE least(coalesce(explanted_at, last_event_at), last_event_at) END AS censor_at
                  FROM f WHERE hit IS NULL OR hit >= t0
            )
            SELECT {carry} floor(greatest(0, extract(epoch FROM ((CASE WHEN failed THEN hit ELSE censor_at END) - t0))) / 86400)::int AS day,
                   count(*) FILTER (WHERE failed)::bigint, count(*) FILTER (WHERE NOT failed)::bigint
              FROM o GROUP BY {carry} day ORDER BY {carry} day
            """, conn))
        {
            cmd.Parameters.Add(new() { Value = endpoint, NpgsqlDbType = NpgsqlDbType.Text });
            cmd.Parameters.Add(Hubs(hubIds));
            await using var r = await cmd.ExecuteReaderAsync(ct);
            while (await r.ReadAsync(ct))
            {
                var key = new string[dims.Count];
                for (var i = 0; i < dims.Count; i++)
                {
                    key[i] = r.GetString(i);
                }

                rows.Add(new SurvivalRow(key, r.GetInt32(dims.Count), r.GetInt64(dims.Count + 1), r.GetInt64(dims.Count + 2)));
            }
        }

        await using var excluded = new NpgsqlCommand($"""
            SELECT count(*) FILTER (WHERE implanted_at IS NULL OR last_event_at IS NULL)::bigint,
                   count(*) FILTER (WHERE implanted_at IS NOT NULL AND last_event_at IS NOT NULL
                                      AND (CASE WHEN $1 = 'explant' THEN explanted_at ELSE (first_failures ->> $1)::timestamptz END) < implanted_at)::bigint
              FROM pf_cohort_members WHERE model IS NOT NULL AND {ClinicFilter.Replace("$1", "$2", StringComparison.Ordinal)}
            """, conn);
        excluded.Parameters.Add(new() { Value = endpoint, NpgsqlDbType = NpgsqlDbType.Text });
        excluded.Parameters.Add(Hubs(hubIds));
        await using var x = await excluded.ExecuteReaderAsync(ct);
        await x.ReadAsync(ct);
        return new SurvivalData(rows, x.GetInt64(0), x.GetInt64(1));
    }

    /// <inheritdoc />
    public async Task<FleetSummary> FleetSummaryAsync(CancellationToken ct)
    {
        await using var conn = await dataSource.OpenConnectionAsync(ct);
        var byStatus = new Dictionary<string, long>(StringComparer.Ordinal);
        await using (var cmd = new NpgsqlCommand("SELECT status, count(*) FROM pf_pump_status GROUP BY status", conn))
        await using (var r = await cmd.ExecuteReaderAsync(ct))
        {
            while (await r.ReadAsync(ct))
            {
                byStatus[r.GetString(0)] = r.GetInt64(1);
            }
        }

        await using (var cmd = new NpgsqlCommand("""
            SELECT (SELECT count(*) FROM pf_anomalies WHERE status = 'open'),
                   (SELECT count(*) FROM pf_alarm_log WHERE cleared_at IS NULL AND severity = 'critical')
            """, conn))
        {
            long open, critical;
            await using (var r = await cmd.ExecuteReaderAsync(ct))
            {
                await r.ReadAsync(ct);
                open = r.GetInt64(0);
                critical = r.GetInt64(1);
            }

            return new FleetSummary(byStatus, byStatus.Values.Sum(), open, critical, await progress.VersionAsync(ct));
        }
    }

    /// <inheritdoc />
    public Task<string> VersionAsync(CancellationToken ct) => progress.VersionAsync(ct);

    /// <inheritdoc />
    public Task<IReadOnlyList<ProjectionProgress>> ProjectionProgressAsync(CancellationToken ct) => progress.ListAsync(ct);

    // A clinic's pumps: those paired with one of its hubs now (pf_pump_status.hub_id); $1 is the hub id array.
    private const string ClinicFilter = "($1::text[] IS NULL OR serial IN (SELECT serial FROM pf_pump_status WHERE hub_id = ANY($1)))";

    private static NpgsqlParameter Hubs(IReadOnlyList<string>? hubIds) =>
        new() { Value = hubIds is null ? DBNull.Value : hubIds.ToArray(), NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Text };

    private static NpgsqlParameter Text(string? v) => new() { Value = (object?)v ?? DBNull.Value, NpgsqlDbType = NpgsqlDbType.Text };

    private static DateTimeOffset? Time(NpgsqlDataReader r, int i) => r.IsDBNull(i) ? null : r.GetFieldValue<DateTimeOffset>(i);

    private static string? Str(NpgsqlDataReader r, int i) => r.IsDBNull(i) ? null : r.GetString(i);

    private static PumpSummary ReadSummary(NpgsqlDataReader r) => new(
        r.GetString(0), Str(r, 1), Str(r, 2), Str(r, 3), Str(r, 4), Str(r, 5), Str(r, 6), r.GetString(7),
        r.IsDBNull(8) ? null : r.GetDouble(8), Time(r, 9), r.GetInt32(10), r.GetInt32(11), Time(r, 12), Time(r, 13),
        r.GetFieldValue<string[]>(14), Time(r, 15), r.GetInt64(16), r.IsDBNull(17) ? null : r.GetDouble(17),
        Str(r, 18), Str(r, 19), Time(r, 20), Time(r, 21));

    /// <inheritdoc />
    public async Task<PumpTherapy?> GetPumpTherapyAsync(string serial, CancellationToken ct)
    {
        await using var cmd = dataSource.CreateCommand("""
            SELECT tp.serial, tp.therapy_id, t.phase, tp.implanted_at, tp.explanted_at, tp.explant_reason, t.implanted_at
            FROM pf_therapy_pumps tp JOIN pf_therapies t ON t.id = tp.therapy_id WHERE tp.serial = $1
            """);
        cmd.Parameters.Add(new() { Value = serial });
        await using var r = await cmd.ExecuteReaderAsync(ct);
        return await r.ReadAsync(ct)
            ? new PumpTherapy(r.GetString(0), r.GetString(1), r.GetString(2), r.GetFieldValue<DateTimeOffset>(3), Time(r, 4), Str(r, 5), Time(r, 6))
            : null;
    }

    /// <inheritdoc />
    public async Task<IReadOnlyList<TherapySummary>> ListTherapiesAsync(string? phase, int limit, CancellationToken ct)
    {
        await using var cmd = dataSource.CreateCommand("""
            SELECT t.id, t.phase, t.indication, t.opened_at, t.current_serial, t.implanted_at, t.ended_at,
                   coalesce((SELECT array_agg(tp.serial ORDER BY tp.implanted_at, tp.serial) FROM pf_therapy_pumps tp WHERE tp.therapy_id = t.id), '{}')
            FROM pf_therapies t WHERE ($1::text IS NULL OR t.phase = $1) ORDER BY t.opened_at DESC, t.id LIMIT $2
            """);
        cmd.Parameters.Add(new() { Value = (object?)phase ?? DBNull.Value, NpgsqlDbType = NpgsqlDbType.Text });
        cmd.Parameters.Add(new() { Value = limit });
        var items = new List<TherapySummary>();
        await using var r = await cmd.ExecuteReaderAsync(ct);
        while (await r.ReadAsync(ct))
        {
            items.Add(new TherapySummary(r.GetString(0), r.GetString(1), Str(r, 2), r.GetFieldValue<DateTimeOffset>(3), Str(r, 4), Time(r, 5), Time(r, 6),
                r.GetFieldValue<string[]>(7)));
        }

        return items;
    }

    /// <inheritdoc />
    public async Task<IReadOnlyList<RefillItem>> ListRefillsAsync(string serial, DateTimeOffset from, DateTimeOffset to, int limit, CancellationToken ct)
    {
        await using var cmd = dataSource.CreateCommand("""
            SELECT serial, seq, at, drug, concentration, concentration_unit, added_ml, expected_residual_ml, aspirated_residual_ml
            FROM pf_refill_log WHERE serial = $1 AND at >= $2 AND at <= $3 ORDER BY at, seq LIMIT $4
            """);
        cmd.Parameters.Add(new() { Value = serial });
        cmd.Parameters.Add(new() { Value = from.ToUniversalTime() });
        cmd.Parameters.Add(new() { Value = to.ToUniversalTime() });
        cmd.Parameters.Add(new() { Value = limit });
        var items = new List<RefillItem>();
        await using var r = await cmd.ExecuteReaderAsync(ct);
        while (await r.ReadAsync(ct))
        {
            items.Add(new RefillItem(r.GetString(0), r.GetInt64(1), r.GetFieldValue<DateTimeOffset>(2), r.GetString(3), r.GetDouble(4), r.GetString(5),
                r.GetDouble(6), r.GetDouble(7), r.GetDouble(8)));
        }

        return items;
    }

    private static AnomalyItem ReadAnomaly(NpgsqlDataReader r)
    {
        using var doc = JsonDocument.Parse(r.GetString(6));
        return new AnomalyItem(r.GetString(0), r.GetString(1), r.GetString(2), r.GetString(3), r.GetString(4), r.GetFieldValue<DateTimeOffset>(5),
            doc.RootElement.Clone(), r.GetString(7), Str(r, 8), Time(r, 9), Str(r, 10), Time(r, 11), Str(r, 12));
    }
}
