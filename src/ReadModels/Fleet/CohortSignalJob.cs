using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Npgsql;
using PumpFleet.Contracts.Events;
using PumpFleet.Contracts.Json;
using PumpFleet.Domain.Detection;
using PumpFleet.EventStore;
using PumpFleet.Grains.Detection.Fleet;

namespace PumpFleet.ReadModels;

/// <summary>
/// The periodic fleet job behind <c>cohort-signal</c>: reads <c>pf_cohort_stats</c>, runs
/// <see cref="CohortSignals.Evaluate"/>, and keeps one open <c>cohort-signal</c> anomaly per cohort on the cohort's
/// own stream (<c>cohort:{model}:{firmware}:{lot}</c>) through the event store, resolving it automatically when
/// the cohort no longer stands out. Appends use the stream version read just before, so two silos running the
/// job at once cannot both open one: the loser gets a concurrency error and the next run sees the open anomaly.
/// </summary>
public sealed partial class CohortSignalJob(
    NpgsqlDataSource dataSource, IEventStore store, IOptions<AnomalyDetectionOptions> options, TimeProvider time,
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

        var now = time.GetUtcNow();
        var appended = new List<PumpEvent>();
        foreach (var (cohort, finding) in CohortSignals.Evaluate(cohorts, options.Value))
        {
            var (version, open) = await LoadAsync(cohort.StreamId, ct);
            PumpEvent? e = null;
            if (finding is not null && open is null)
            {
                e = new AnomalyDetected
                {
                    At = now,
                    AnomalyId = AnomalyEngine.AnomalyId(cohort.StreamId, AnomalyKinds.CohortSignal, version),
                    Kind = AnomalyKinds.CohortSignal,
                    Severity = "warning",
                    Summary = finding.Summary,
                    Evidence = finding.Evidence,
                };
            }
            else if (finding is null && open is not null)
            {
                e = AnomalyEngine.Resolved(open, now, "the cohort no longer stands out from the fleet");
            }

            if (e is null)
            {
                continue;
            }

            await store.AppendAsync(cohort.StreamId, version,
                [new EventToAppend(AnomalyEngine.EventId(e), EventTypes.NameOf(e), EventJson.Serialize(e), null, null, now, false, null)], ct);
            appended.Add(e);
            if (e is AnomalyDetected d)
            {
                LogSignal(cohort.StreamId, d.Summary);
            }
        }

        return appended;
    }

    private async Task<(long Version, string? OpenId)> LoadAsync(string streamId, CancellationToken ct)
    {
        long version = 0;
        string? open = null;
        await foreach (var s in store.ReadStreamAsync(streamId, 0, ct))
        {
            version = s.Version;
            switch (EventJson.Deserialize(s.Type, s.Data))
            {
                case AnomalyDetected d:
                    open = d.AnomalyId;
                    break;
                case AnomalyResolved r when r.AnomalyId == open:
                    open = null;
                    break;
            }
        }

        return (version, open);
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Cohort signal run failed; retrying at the next interval")]
    private partial void LogRunFailed(Exception e);

    [LoggerMessage(Level = LogLevel.Information, Message = "Cohort signal run: pf_cohort_stats does not exist yet")]
    private partial void LogNoReadModel();

    [LoggerMessage(Level = LogLevel.Warning, Message = "Cohort signal on {Stream}: {Summary}")]
    private partial void LogSignal(string stream, string summary);
}
