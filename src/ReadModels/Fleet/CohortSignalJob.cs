using System.Globalization;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Npgsql;
using PumpFleet.Contracts.Events;
using PumpFleet.Contracts.Grains;
using PumpFleet.Domain.Detection;
using PumpFleet.EventStore.Log;
using PumpFleet.Grains.Detection.Fleet;

namespace PumpFleet.ReadModels;

/// <summary>
/// The periodic fleet job behind <c>cohort-signal</c>: takes each cohort's exposure and counts, runs
/// <see cref="CohortSignals.Evaluate"/> (Benjamini–Hochberg across cohorts and measures), and keeps one open
/// <c>cohort-signal</c> anomaly per cohort on the cohort's own stream (<c>cohort:{model}:{firmware}:{lot}</c>),
/// resolving it automatically when the cohort no longer stands out. It writes through the cohort's grain
/// (<see cref="ICohortSignalGrain"/>), the same activation that acknowledges and resolves for the dashboard: one writer
/// per stream, so the job and a clinician never conflict. The counts come from the 16 <see cref="CohortTallyGrain"/>s,
/// which keep them from the <c>pumpfleet-log</c> stream, so a run makes no database query; with
/// <c>Streaming:Enabled=false</c> (no stream to keep them) it reads <c>pf_cohort_stats</c> as before.
/// </summary>
public sealed partial class CohortSignalJob(
    NpgsqlDataSource dataSource, IGrainFactory grains, IOptions<AnomalyDetectionOptions> options, TimeProvider time,
    IConfiguration configuration, ILogger<CohortSignalJob> logger) : BackgroundService
{
    private const string Query = "SELECT model, firmware, lot, pumps, pump_days, alarms, critical_alarms, anomalies FROM pf_cohort_stats";

    private readonly bool _fromStream = configuration.GetValue("Streaming:Enabled", true);

    /// <inheritdoc />
    protected override Task ExecuteAsync(CancellationToken stoppingToken) =>
        options.Value.RunFleetJobs
            ? FleetJobLoop.RunAsync(options.Value.CohortCheckInterval, time, RunOnceAsync, LogRunFailed, stoppingToken)
            : Task.CompletedTask;

    /// <summary>One run: returns the events appended (opened and resolved signals).</summary>
    public async Task<IReadOnlyList<PumpEvent>> RunOnceAsync(CancellationToken ct)
    {
        var cohorts = _fromStream ? await FromTalliesAsync(grains) : await FromReadModelAsync(ct);
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

    /// <summary>
    /// Every cohort's sums, from the tally grains' memory: a cohort's pumps spread over the log partitions, so the
    /// partitions' sums are added per cohort (exposure in whole microseconds, exact).
    /// </summary>
    public static async Task<List<CohortStats>> FromTalliesAsync(IGrainFactory grains)
    {
        ArgumentNullException.ThrowIfNull(grains);
        var parts = await Task.WhenAll(Enumerable.Range(0, LogPartitioning.Count).Select(p =>
            grains.GetGrain<ICohortTallyGrain>(p.ToString(CultureInfo.InvariantCulture)).GetCohortsAsync()));
        return [.. parts.SelectMany(x => x)
            .GroupBy(c => new CohortKey(c.Model, c.Firmware, c.Lot))
            .OrderBy(g => g.Key.Model, StringComparer.Ordinal).ThenBy(g => g.Key.Firmware, StringComparer.Ordinal).ThenBy(g => g.Key.Lot, StringComparer.Ordinal)
            .Select(g => new CohortStats(g.Key.Model, g.Key.Firmware, g.Key.Lot, g.Sum(c => c.Pumps),
                g.Sum(c => c.SpanMicros) / 86_400_000_000.0, g.Sum(c => c.Alarms), g.Sum(c => c.CriticalAlarms), g.Sum(c => c.Anomalies)))];
    }

    private async Task<List<CohortStats>> FromReadModelAsync(CancellationToken ct)
    {
        var cohorts = new List<CohortStats>();
        try
        {
            await using var cmd = dataSource.CreateCommand(Query);
            await using var reader = await cmd.ExecuteReaderAsync(ct);
            while (await reader.ReadAsync(ct))
            {
                cohorts.Add(new CohortStats(reader.GetString(0), reader.GetString(1), reader.GetString(2),
                    Convert.ToInt64(reader.GetValue(3), CultureInfo.InvariantCulture),
                    Convert.ToDouble(reader.GetValue(4), CultureInfo.InvariantCulture),
                    Convert.ToInt64(reader.GetValue(5), CultureInfo.InvariantCulture),
                    Convert.ToInt64(reader.GetValue(6), CultureInfo.InvariantCulture),
                    Convert.ToInt64(reader.GetValue(7), CultureInfo.InvariantCulture)));
            }
        }
        catch (PostgresException e) when (e.SqlState == PostgresErrorCodes.UndefinedTable)
        {
            LogNoReadModel();
            return [];
        }

        return cohorts;
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Cohort signal run failed; retrying at the next interval")]
    private partial void LogRunFailed(Exception e);

    [LoggerMessage(Level = LogLevel.Information, Message = "Cohort signal run: pf_cohort_stats does not exist yet")]
    private partial void LogNoReadModel();

    [LoggerMessage(Level = LogLevel.Warning, Message = "Cohort signal on {Stream}: {Summary}")]
    private partial void LogSignal(string stream, string summary);
}
