using System.Diagnostics.Metrics;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Npgsql;
using PumpFleet.Domain.Detection;
using PumpFleet.Projections;

namespace PumpFleet.ReadModels;

/// <summary>
/// Meter <c>PumpFleet.Projections</c>: projection lag and the fleet gauges read from the read models. Gauge callbacks
/// must not touch the database (a scrape would then cost a query per series), so a background loop refreshes a
/// snapshot at most every <see cref="ProjectionOptions.MetricsRefreshInterval"/> and the gauges read the snapshot.
/// </summary>
public sealed partial class ProjectionMetrics : BackgroundService
{
    /// <summary>The meter name (exported by ServiceDefaults with the other <c>PumpFleet.*</c> meters).</summary>
    public const string MeterName = "PumpFleet.Projections";

    private readonly NpgsqlDataSource _dataSource;
    private readonly ProjectionProgressStore _progress;
    private readonly IOptions<ProjectionOptions> _options;
    private readonly IOptions<AnomalyDetectionOptions> _detection;
    private readonly ParkedEventStore _parked;
    private readonly TimeProvider _time;
    private readonly ILogger<ProjectionMetrics> _logger;
    private volatile FleetSnapshot _snapshot = FleetSnapshot.Empty;

    /// <summary>Creates the instruments.</summary>
    public ProjectionMetrics(
        IMeterFactory meterFactory, NpgsqlDataSource dataSource, ProjectionProgressStore progress, ParkedEventStore parked, IOptions<ProjectionOptions> options,
        IOptions<AnomalyDetectionOptions> detection, TimeProvider time, ILogger<ProjectionMetrics> logger)
    {
        ArgumentNullException.ThrowIfNull(meterFactory);
        _dataSource = dataSource;
        _progress = progress;
        _parked = parked;
        _options = options;
        _detection = detection;
        _time = time;
        _logger = logger;
        var meter = meterFactory.Create(MeterName);
        meter.CreateObservableGauge("pumpfleet.projection.lag", () => _snapshot.Lag.Select(l => new Measurement<double>(l.Seconds, new KeyValuePair<string, object?>("projection", l.Projection))),
            unit: "s", description: "Newest stored receive time minus the receive time of the last event the projection processed.");
        meter.CreateObservableGauge("pumpfleet.projection.lag.events", () => _snapshot.Lag.Select(l => new Measurement<long>(l.Events, new KeyValuePair<string, object?>("projection", l.Projection))),
            unit: "{event}", description: "Events stored after the projection's checkpoint (slowest partition).");
        meter.CreateObservableGauge("pumpfleet.projection.parked.open", () => _snapshot.ParkedOpen.Select(p => new Measurement<long>(p.Value, new KeyValuePair<string, object?>("projection", p.Key))),
            unit: "{event}", description: "Events a projection parked and no retry has applied yet (projections parked).");
        meter.CreateObservableGauge("pumpfleet.pumps", () => _snapshot.PumpsByStatus.Select(p => new Measurement<long>(p.Value, new KeyValuePair<string, object?>("status", p.Key))),
            unit: "{pump}", description: "Pumps by status (read model).");
        meter.CreateObservableGauge("pumpfleet.anomalies.open", () => _snapshot.OpenAnomalies.Select(a => new Measurement<long>(a.Count,
                new KeyValuePair<string, object?>("kind", a.Kind), new KeyValuePair<string, object?>("severity", a.Severity))),
            unit: "{anomaly}", description: "Anomalies not yet resolved (open or acknowledged), by kind and severity.");
        meter.CreateObservableGauge("pumpfleet.alarms.active", () => _snapshot.ActiveAlarms.Select(a => new Measurement<long>(a.Count,
                new KeyValuePair<string, object?>("code", a.Kind), new KeyValuePair<string, object?>("severity", a.Severity))),
            unit: "{alarm}", description: "Pump alarms raised and not cleared, by code and severity.");
        meter.CreateObservableGauge("pumpfleet.pumps.silent", () => _snapshot.Silent,
            unit: "{pump}", description: "Active pumps with no message for longer than the silent window (PumpFleet:Detection:SilentWindow, the window of the silent anomaly).");
        meter.CreateObservableGauge("pumpfleet.depletion_risk.pumps", () => new[]
            {
                new Measurement<long>(_snapshot.Risk24h, new KeyValuePair<string, object?>("within", "24h")),
                new Measurement<long>(_snapshot.Risk72h, new KeyValuePair<string, object?>("within", "72h")),
            },
            unit: "{pump}", description: "Pumps whose ledger forecast reaches empty or the low-reservoir level within the window.");
    }

    /// <summary>The latest snapshot (for tests and the admin API).</summary>
    public FleetSnapshot Snapshot => _snapshot;

    /// <summary>Reads every figure once.</summary>
    public async Task<FleetSnapshot> RefreshAsync(CancellationToken ct)
    {
        var n = _options.Value.Partitions;
        var now = _time.GetUtcNow();
        await using var conn = await _dataSource.OpenConnectionAsync(ct);
        var lag = await _progress.LagAsync(n, ct);
        // One pass over the status table for every figure it gives (at a million pumps it is gigabytes; two passes were
        // twice the work): the counts by status, and per status the silent and at-risk ones (inactive pumps excluded).
        var byStatus = new Dictionary<string, long>(StringComparer.Ordinal);
        long silent = 0, risk24 = 0, risk72 = 0;
        await using (var cmd = new NpgsqlCommand("""
            SELECT status, count(*),
                   count(*) FILTER (WHERE last_seen_at < $1),
                   count(*) FILTER (WHERE least(forecast_empty_at, next_refill_due_at) < $2),
                   count(*) FILTER (WHERE least(forecast_empty_at, next_refill_due_at) < $3)
              FROM pf_pump_status GROUP BY status
            """, conn))
        {
            // The one definition of silent: the window that also opens the silent anomaly (PumpFleet:Detection:SilentWindow).
            cmd.Parameters.Add(new() { Value = now - _detection.Value.SilentWindow });
            cmd.Parameters.Add(new() { Value = now.AddHours(24) });
            cmd.Parameters.Add(new() { Value = now.AddHours(72) });
            await using var r = await cmd.ExecuteReaderAsync(ct);
            while (await r.ReadAsync(ct))
            {
                var status = r.GetString(0);
                byStatus[status] = r.GetInt64(1);
                if (status != "inactive")
                {
                    silent += r.GetInt64(2);
                    risk24 += r.GetInt64(3);
                    risk72 += r.GetInt64(4);
                }
            }
        }

        var anomalies = await CountsAsync(conn, "SELECT kind, severity, count(*) FROM pf_anomalies WHERE status <> 'resolved' GROUP BY kind, severity", ct);
        var alarms = await CountsAsync(conn, "SELECT code, severity, count(*) FROM pf_alarm_log WHERE cleared_at IS NULL GROUP BY code, severity", ct);
        var snapshot = new FleetSnapshot(lag, byStatus, anomalies, alarms, silent, risk24, risk72, now) { ParkedOpen = await _parked.CountOpenAsync(ct) };
        _snapshot = snapshot;
        return snapshot;
    }

    /// <inheritdoc />
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                await RefreshAsync(stoppingToken);
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                return;
            }
            catch (Exception e) when (e is not OutOfMemoryException)
            {
                // Gauges keep the last good snapshot; an outage shows up in the health checks, not as zeros.
                LogRefreshFailed(e);
            }

            try
            {
                await Task.Delay(_options.Value.MetricsRefreshInterval, _time, stoppingToken);
            }
            catch (OperationCanceledException)
            {
                return;
            }
        }
    }

    private static async Task<List<KindCount>> CountsAsync(NpgsqlConnection conn, string sql, CancellationToken ct)
    {
        var list = new List<KindCount>();
        await using var cmd = new NpgsqlCommand(sql, conn);
        await using var r = await cmd.ExecuteReaderAsync(ct);
        while (await r.ReadAsync(ct))
        {
            list.Add(new KindCount(r.GetString(0), r.GetString(1), r.GetInt64(2)));
        }

        return list;
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Refreshing the projection and fleet gauges failed; keeping the last values")]
    private partial void LogRefreshFailed(Exception e);
}

/// <summary>A count by (kind or code, severity).</summary>
public sealed record KindCount(string Kind, string Severity, long Count);

/// <summary>All gauge values at one time.</summary>
public sealed record FleetSnapshot(
    IReadOnlyList<LagFigure> Lag, IReadOnlyDictionary<string, long> PumpsByStatus, IReadOnlyList<KindCount> OpenAnomalies,
    IReadOnlyList<KindCount> ActiveAlarms, long Silent, long Risk24h, long Risk72h, DateTimeOffset At)
{
    /// <summary>Before the first refresh.</summary>
    public static FleetSnapshot Empty { get; } = new([], new Dictionary<string, long>(), [], [], 0, 0, 0, DateTimeOffset.MinValue);

    /// <summary>Events parked and not yet applied, per projection.</summary>
    public IReadOnlyDictionary<string, long> ParkedOpen { get; init; } = new Dictionary<string, long>();
}
