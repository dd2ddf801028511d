using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Npgsql;
using PumpFleet.Contracts.Events;
using PumpFleet.Contracts.Grains;
using PumpFleet.Domain.Detection;
using PumpFleet.Grains.Detection.Fleet;

namespace PumpFleet.ReadModels;

/// <summary>
/// The periodic fleet job behind <c>cohort-signal</c>: reads <c>pf_cohort_stats</c>, runs
/// <see cref="CohortSignals.Evaluate"/>, and keeps one open <c>cohort-signal</c> anomaly per cohort on the cohort's
/// own stream (<c>cohort:{model}:{firmware}:{lot}</c>), resolving it automatically when the cohort no longer stands
/// out. It writes through the cohort's grain (<see cref="ICohortSignalGrain"/>), the same activation that
/// acknowledges and resolves for the dashboard: one writer per stream, so the job and a clinician never conflict.
/// </summary>
public sealed partial class CohortSignalJob(
    NpgsqlDataSource dataSource, IGrainFactory grains, IOptions<AnomalyDetectionOptions> options, TimeProvider time,
    ILogger<CohortSignalJob> logger) : BackgroundService
{
    private const string Query = "SELECT model, firmware, lot, pumps, pump_days, alarms, critical_alarms, anomalies FROM pf_cohort_stats";

    /// <inheritdoc />
    protected override Task ExecuteAsync(CancellationToken stoppingToken) =>
        options.Value.RunFleetJobs
            ? FleetJobLoop.RunAsync(options.Value.CohortCheckInterval, time, RunOnceAsync, LogRunFailed, stoppingToken)
            : Task.CompletedTask;

    /// <summary>One run: returns the events appended (opened and resolved signals).</summary>
    public async Task<IReadOnlyList<PumpEvent>> RunOnceAsync(CancellationToken ct)
    {
        var cohorts = new List<CohortStats>();
        try
        {
            await using var cmd = dataSource.CreateCommand(Query);
            await using var reader = await cmd.ExecuteReaderAsync(ct);
            while (await reader.ReadAsync(ct))
            {
                cohorts.Add(new CohortStats(reader.GetString(0), reader.GetString(1), reader.GetString(2),
                    Convert.ToInt64(reader.GetValue(3), System.Globalization.CultureInfo.InvariantCulture),
                    Convert.ToDouble(reader.GetValue(4), System.Globalization.CultureInfo.InvariantCulture),
                    Convert.ToInt64(reader.GetValue(5), System.Globalization.CultureInfo.InvariantCulture),
                    Convert.ToInt64(reader.GetValue(6), System.Globalization.CultureInfo.InvariantCulture),
                    Convert.ToInt64(reader.GetValue(7), System.Globalization.CultureInfo.InvariantCulture)));
            }
        }
        catch (PostgresException e) when (e.SqlState == PostgresErrorCodes.UndefinedTable)
        {
            LogNoReadModel();
            return [];
        }

        var appended = new List<PumpEvent>();
        foreach (var (cohort, finding) in CohortSignals.Evaluate(cohorts, options.Value))
        {
            var signal = finding is null ? null : new CohortSignalFinding { Summary = finding.Summary, Evidence = finding.Evidence };
            if (await grains.GetGrain<ICohortSignalGrain>(cohort.StreamId).SetSignalAsync(signal) is not { } e)
            {
                continue;
            }

            appended.Add(e);
            if (e is AnomalyDetected d)
            {
                LogSignal(cohort.StreamId, d.Summary);
            }
        }

        return appended;
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Cohort signal run failed; retrying at the next interval")]
    private partial void LogRunFailed(Exception e);

    [LoggerMessage(Level = LogLevel.Information, Message = "Cohort signal run: pf_cohort_stats does not exist yet")]
    private partial void LogNoReadModel();

    [LoggerMessage(Level = LogLevel.Warning, Message = "Cohort signal on {Stream}: {Summary}")]
    private partial void LogSignal(string stream, string summary);
}
