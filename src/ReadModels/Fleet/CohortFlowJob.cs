using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Npgsql;
using PumpFleet.Contracts.Events;
using PumpFleet.Contracts.Grains;
using PumpFleet.Domain.Detection;
using PumpFleet.Domain.Detection.CohortFlow;
using FlowCohortKey = PumpFleet.Domain.Detection.CohortFlow.CohortKey;

namespace PumpFleet.ReadModels;

/// <summary>
/// The periodic fleet job behind <c>cohort-flow-deviation</c> (docs/detection.md): reads each pump's last refill-cycle
/// flow factor from <c>pf_pump_status</c>, runs <see cref="CohortFlowDeviation.Evaluate"/> (pure, in Domain), and keeps
/// one open warning per cohort on the cohort's stream <c>cohort-flow:{dimension}:{value}</c>, written through that
/// stream's grain (<see cref="ICohortSignalGrain.SetFindingAsync"/>), which the dashboard acknowledges and resolves
/// through too. An open warning whose cohort no longer signals (or is no longer tested) is resolved.
/// </summary>
public sealed partial class CohortFlowJob(
    NpgsqlDataSource dataSource, IGrainFactory grains, IOptions<AnomalyDetectionOptions> options, TimeProvider time,
    ILogger<CohortFlowJob> logger) : BackgroundService
{
    private const string SamplesQuery = """
        SELECT serial, model, firmware, lot, refill_flow_at, refill_flow_factor, refill_flow_cycle_ml
        FROM pf_pump_status
        WHERE refill_flow_factor IS NOT NULL AND refill_flow_at >= $1
        """;

    private const string OpenQuery = "SELECT serial FROM pf_anomalies WHERE kind = $1 AND status <> 'resolved'";

    /// <inheritdoc />
    protected override Task ExecuteAsync(CancellationToken stoppingToken) =>
        options.Value.RunFleetJobs
            ? FleetJobLoop.RunAsync(options.Value.CohortCheckInterval, time, RunOnceAsync, LogRunFailed, stoppingToken)
            : Task.CompletedTask;

    /// <summary>One run: returns the events appended (warnings opened and resolved).</summary>
    public async Task<IReadOnlyList<PumpEvent>> RunOnceAsync(CancellationToken ct)
    {
        var o = options.Value;
        var now = time.GetUtcNow();
        var samples = new List<RefillFlowSample>();
        var open = new HashSet<string>(StringComparer.Ordinal);
        try
        {
            await using (var cmd = dataSource.CreateCommand(SamplesQuery))
            {
                cmd.Parameters.Add(new NpgsqlParameter { Value = (now - o.CohortFlowWindow).UtcDateTime });
                await using var reader = await cmd.ExecuteReaderAsync(ct);
                while (await reader.ReadAsync(ct))
                {
                    samples.Add(new RefillFlowSample(reader.GetString(0), Nullable(reader, 1), Nullable(reader, 2), Nullable(reader, 3),
                        reader.GetFieldValue<DateTimeOffset>(4), reader.GetDouble(5), reader.IsDBNull(6) ? 0 : reader.GetDouble(6)));
                }
            }

            await using (var cmd = dataSource.CreateCommand(OpenQuery))
            {
                cmd.Parameters.Add(new NpgsqlParameter { Value = AnomalyKinds.CohortFlowDeviation });
                await using var reader = await cmd.ExecuteReaderAsync(ct);
                while (await reader.ReadAsync(ct))
                {
                    open.Add(reader.GetString(0));
                }
            }
        }
        catch (PostgresException e) when (e.SqlState is PostgresErrorCodes.UndefinedTable or PostgresErrorCodes.UndefinedColumn)
        {
            LogNoReadModel();
            return [];
        }

        var appended = new List<PumpEvent>();
        var signalling = new HashSet<string>(StringComparer.Ordinal);
        foreach (var r in CohortFlowDeviation.Evaluate(samples, o, now).Where(r => r.Signals))
        {
            signalling.Add(r.Cohort.StreamId);
            if (open.Contains(r.Cohort.StreamId))
            {
                continue;   // already open: the grain would add nothing
            }

            var finding = new CohortSignalFinding { Summary = r.Summary(o.CohortFlowMargin), Evidence = r.Evidence(o.CohortFlowMargin) };
            if (await grains.GetGrain<ICohortSignalGrain>(r.Cohort.StreamId).SetFindingAsync(AnomalyKinds.CohortFlowDeviation, finding) is { } e)
            {
                appended.Add(e);
                LogWarning(r.Cohort.StreamId, finding.Summary);
            }
        }

        foreach (var stream in open.Where(s => !signalling.Contains(s) && FlowCohortKey.FromStreamId(s) is not null))
        {
            if (await grains.GetGrain<ICohortSignalGrain>(stream).SetFindingAsync(AnomalyKinds.CohortFlowDeviation, null) is { } e)
            {
                appended.Add(e);
            }
        }

        return appended;
    }

    private static string? Nullable(NpgsqlDataReader reader, int i) => reader.IsDBNull(i) ? null : reader.GetString(i);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Cohort flow run failed; retrying at the next interval")]
    private partial void LogRunFailed(Exception e);

    [LoggerMessage(Level = LogLevel.Information, Message = "Cohort flow run: pf_pump_status has no refill flow columns yet")]
    private partial void LogNoReadModel();

    [LoggerMessage(Level = LogLevel.Warning, Message = "Cohort flow deviation on {Stream}: {Summary}")]
    private partial void LogWarning(string stream, string summary);
}
