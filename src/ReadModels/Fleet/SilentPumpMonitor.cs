using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Npgsql;
using PumpFleet.Contracts.Grains;
using PumpFleet.Contracts.Views;
using PumpFleet.Domain.Detection;

namespace PumpFleet.ReadModels;

/// <summary>
/// The fleet-level checks on time, so that silence is not taken for health: one periodic query of the pump-status
/// read model instead of a timer per pump (a million idle timers would keep a million activations alive).
/// <list type="bullet">
/// <item>Pumps unheard for longer than the window and not yet flagged are handed to their grain, which opens
/// <c>silent</c> once (and schedules its own re-evaluation with a durable reminder); it resolves on the next batch.</item>
/// <item>Pumps that have sent nothing for <see cref="AnomalyDetectionOptions.ReevaluateAfter"/> and whose ledger
/// forecast (<c>next_refill_due_at</c>) comes within twice the depletion horizon, without an open depletion risk of
/// the severity due, are re-evaluated on time: the reservoir empties whether the pump reports or not.</item>
/// </list>
/// Both page through every candidate (keyset, oldest first) and call grains a bounded number at a time. The only
/// detectors on the wall clock (docs/detection.md, "silent"), through <see cref="TimeProvider"/>.
/// Every silo may run it: the grain keeps one open anomaly per kind, so a second caller changes nothing.
/// </summary>
public sealed partial class SilentPumpMonitor(
    NpgsqlDataSource dataSource, IGrainFactory grains, IOptions<AnomalyDetectionOptions> options, TimeProvider time,
    ILogger<SilentPumpMonitor> logger) : BackgroundService
{
    // pf_pump_status and pf_anomalies are the projections' read models. Flagged pumps are skipped, so a long silence
    // costs one grain call, not one per cycle; the keyset (last_seen_at, serial) pages through all of them. last_seen_at
    // has no index (migration 060: it changes with every event, and its index kept every status update from being
    // HOT), so each page scans the table: every SilentCheckInterval, tens of milliseconds at 100,000 pumps.
    private const string SilentQuery = """
        SELECT s.serial, s.last_seen_at FROM pf_pump_status s
        WHERE s.last_seen_at < @cutoff AND s.status <> @inactive
          AND (s.last_seen_at, s.serial) > (@afterSeen, @afterSerial)
          AND NOT EXISTS (SELECT 1 FROM pf_anomalies a WHERE a.serial = s.serial AND a.kind = @silent AND a.status <> @resolved)
        ORDER BY s.last_seen_at, s.serial
        LIMIT @limit
        """;

    private const string DepletionQuery = """
        SELECT s.serial, s.next_refill_due_at FROM pf_pump_status s
        WHERE s.refill_due_day <= (@horizonEnd AT TIME ZONE 'UTC')::date AND s.next_refill_due_at < @horizonEnd
          AND s.last_seen_at < @stale AND s.status <> @inactive
          AND (s.next_refill_due_at, s.serial) > (@afterDue, @afterSerial)
          AND NOT EXISTS (SELECT 1 FROM pf_anomalies a WHERE a.serial = s.serial AND a.kind = @depletion AND a.status <> @resolved
                          AND (a.severity = @critical OR s.next_refill_due_at > @criticalEnd))
        ORDER BY s.next_refill_due_at, s.serial
        LIMIT @limit
        """;

    /// <inheritdoc />
    protected override Task ExecuteAsync(CancellationToken stoppingToken) =>
        // The next tick tries again after a failure; silence is re-derived from the read model every time.
        options.Value.RunFleetJobs
            ? FleetJobLoop.RunAsync(options.Value.SilentCheckInterval, time, async ct =>
            {
                await CheckOnceAsync(ct);
                await ReevaluateOnceAsync(ct);
            }, LogCheckFailed, stoppingToken)
            : Task.CompletedTask;

    /// <summary>One silence check over every candidate: returns how many silent anomalies were opened.</summary>
    public async Task<int> CheckOnceAsync(CancellationToken ct)
    {
        var o = options.Value;
        var window = o.SilentWindow;
        var cutoff = time.GetUtcNow() - window;
        var opened = 0;
        var candidates = 0;
        var after = (Seen: DateTimeOffset.MinValue, Serial: "");
        while (true)
        {
            var page = await ReadPageAsync(SilentQuery, cmd =>
            {
                cmd.Parameters.AddWithValue("cutoff", cutoff);
                cmd.Parameters.AddWithValue("afterSeen", after.Seen);
                cmd.Parameters.AddWithValue("afterSerial", after.Serial);
                cmd.Parameters.AddWithValue("silent", AnomalyKinds.Silent);
            }, ct);
            if (page is null)
            {
                return 0;
            }

            candidates += page.Count;
            await Parallel.ForEachAsync(page, new ParallelOptions { MaxDegreeOfParallelism = o.MonitorParallelism, CancellationToken = ct }, async (p, _) =>
            {
                if (await grains.GetGrain<IPumpMonitorGrain>(p.Serial).MarkSilentAsync(p.At, window))
                {
                    Interlocked.Increment(ref opened);
                }
            });
            if (page.Count < o.MonitorPageSize)
            {
                break;
            }

            after = (page[^1].At, page[^1].Serial);
        }

        if (opened > 0)
        {
            LogOpened(opened, candidates);
        }

        return opened;
    }

    /// <summary>
    /// One re-evaluation on time of every pump that is quiet and whose ledger forecast nears the depletion horizon:
    /// returns how many grains changed an anomaly.
    /// </summary>
    public async Task<int> ReevaluateOnceAsync(CancellationToken ct)
    {
        var o = options.Value;
        var now = time.GetUtcNow();
        var changed = 0;
        var after = (Due: DateTimeOffset.MinValue, Serial: "");
        while (true)
        {
            var page = await ReadPageAsync(DepletionQuery, cmd =>
            {
                // Twice the horizon: the forecast column uses the programmed rate; the grain uses the fastest observed one.
                cmd.Parameters.AddWithValue("horizonEnd", now + (2 * o.DepletionHorizon));
                cmd.Parameters.AddWithValue("criticalEnd", now + o.DepletionCriticalHorizon);
                cmd.Parameters.AddWithValue("stale", now - o.ReevaluateAfter);
                cmd.Parameters.AddWithValue("afterDue", after.Due);
                cmd.Parameters.AddWithValue("afterSerial", after.Serial);
                cmd.Parameters.AddWithValue("depletion", AnomalyKinds.DepletionRisk);
                cmd.Parameters.AddWithValue("critical", "critical");
            }, ct);
            if (page is null)
            {
                return 0;
            }

            await Parallel.ForEachAsync(page, new ParallelOptions { MaxDegreeOfParallelism = o.MonitorParallelism, CancellationToken = ct }, async (p, _) =>
            {
                if (await grains.GetGrain<IPumpMonitorGrain>(p.Serial).ReevaluateAsync())
                {
                    Interlocked.Increment(ref changed);
                }
            });
            if (page.Count < o.MonitorPageSize)
            {
                break;
            }

            after = (page[^1].At, page[^1].Serial);
        }

        if (changed > 0)
        {
            LogReevaluated(changed);
        }

        return changed;
    }

    private async Task<List<(string Serial, DateTimeOffset At)>?> ReadPageAsync(string sql, Action<NpgsqlCommand> bind, CancellationToken ct)
    {
        var page = new List<(string, DateTimeOffset)>();
        await using var cmd = dataSource.CreateCommand(sql);
        cmd.Parameters.AddWithValue("inactive", PumpStatuses.Inactive);
        cmd.Parameters.AddWithValue("resolved", "resolved");
        cmd.Parameters.AddWithValue("limit", options.Value.MonitorPageSize);
        bind(cmd);

        try
        {
            await using var reader = await cmd.ExecuteReaderAsync(ct);
            while (await reader.ReadAsync(ct))
            {
                page.Add((reader.GetString(0), await reader.GetFieldValueAsync<DateTimeOffset>(1, ct)));
            }
        }
        catch (PostgresException e) when (e.SqlState == PostgresErrorCodes.UndefinedTable)
        {
            // The read models are created by the projections; until they run there is nothing to check.
            LogNoReadModel();
            return null;
        }

        return page;
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Silent-pump check failed; retrying at the next interval")]
    private partial void LogCheckFailed(Exception e);

    [LoggerMessage(Level = LogLevel.Information, Message = "Silent-pump check: the read models (pf_pump_status, pf_anomalies) do not exist yet")]
    private partial void LogNoReadModel();

    [LoggerMessage(Level = LogLevel.Information, Message = "Silent-pump check opened {Opened} silent anomalies ({Candidates} unflagged pumps past the window)")]
    private partial void LogOpened(int opened, int candidates);

    [LoggerMessage(Level = LogLevel.Information, Message = "Re-evaluation on time changed anomalies of {Changed} quiet pumps")]
    private partial void LogReevaluated(int changed);
}
