using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Npgsql;
using PumpFleet.Contracts.Grains;
using PumpFleet.Contracts.Views;
using PumpFleet.Domain.Detection;

namespace PumpFleet.ReadModels;

/// <summary>
/// The fleet-level <c>silent</c> check: one periodic query of the pump-status read model for pumps unheard for
/// longer than the window, instead of a timer per pump (a million idle timers would keep a million activations
/// alive). Each hit is handed to its grain, which opens the anomaly once and resolves it on the next batch.
/// The only detector on the wall clock (docs/detection.md, "silent"), through <see cref="TimeProvider"/>.
/// Every silo may run it: the grain keeps one open anomaly per kind, so a second caller changes nothing.
/// </summary>
public sealed partial class SilentPumpMonitor(
    NpgsqlDataSource dataSource, IGrainFactory grains, IOptions<AnomalyDetectionOptions> options, TimeProvider time,
    ILogger<SilentPumpMonitor> logger) : BackgroundService
{
    // pf_pump_status: this project's pump read model (serial, hub_id, last_seen_at, status, ...).
    private const string Query = """
        SELECT serial, last_seen_at FROM pf_pump_status
        WHERE last_seen_at < @cutoff AND status <> @inactive
        ORDER BY last_seen_at
        LIMIT @limit
        """;

    /// <summary>Most pumps handled per check; the rest wait for the next one.</summary>
    public const int BatchLimit = 10_000;

    /// <inheritdoc />
    protected override Task ExecuteAsync(CancellationToken stoppingToken) =>
        // The next tick tries again after a failure; silence is re-derived from the read model every time.
        options.Value.RunFleetJobs
            ? FleetJobLoop.RunAsync(options.Value.SilentCheckInterval, time, CheckOnceAsync, LogCheckFailed, stoppingToken)
            : Task.CompletedTask;

    /// <summary>One check: returns how many silent anomalies were opened.</summary>
    public async Task<int> CheckOnceAsync(CancellationToken ct)
    {
        var window = options.Value.SilentWindow;
        var cutoff = time.GetUtcNow() - window;
        var silent = new List<(string Serial, DateTimeOffset LastSeenAt)>();
        await using (var cmd = dataSource.CreateCommand(Query))
        {
            cmd.Parameters.AddWithValue("cutoff", cutoff);
            cmd.Parameters.AddWithValue("inactive", PumpStatuses.Inactive);
            cmd.Parameters.AddWithValue("limit", BatchLimit);
            try
            {
                await using var reader = await cmd.ExecuteReaderAsync(ct);
                while (await reader.ReadAsync(ct))
                {
                    silent.Add((reader.GetString(0), await reader.GetFieldValueAsync<DateTimeOffset>(1, ct)));
                }
            }
            catch (PostgresException e) when (e.SqlState == PostgresErrorCodes.UndefinedTable)
            {
                // The read model is created by the projections; until they run there is nothing to check.
                LogNoReadModel();
                return 0;
            }
        }

        var opened = 0;
        foreach (var (serial, lastSeenAt) in silent)
        {
            if (await grains.GetGrain<IPumpMonitorGrain>(serial).MarkSilentAsync(lastSeenAt, window))
            {
                opened++;
            }
        }

        if (opened > 0)
        {
            LogOpened(opened, silent.Count);
        }

        return opened;
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Silent-pump check failed; retrying at the next interval")]
    private partial void LogCheckFailed(Exception e);

    [LoggerMessage(Level = LogLevel.Information, Message = "Silent-pump check: pf_pump_status does not exist yet")]
    private partial void LogNoReadModel();

    [LoggerMessage(Level = LogLevel.Information, Message = "Silent-pump check opened {Opened} silent anomalies ({Candidates} pumps past the window)")]
    private partial void LogOpened(int opened, int candidates);
}
