using System.Globalization;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Npgsql;
using PumpFleet.Contracts.Events;
using PumpFleet.Contracts.Grains;
using PumpFleet.Domain.Detection;
using PumpFleet.Domain.Detection.CohortFlow;
using PumpFleet.EventStore.Log;
using FlowCohortKey = PumpFleet.Domain.Detection.CohortFlow.CohortKey;

namespace PumpFleet.ReadModels;

/// <summary>
/// The periodic fleet job behind <c>cohort-flow-deviation</c> (docs/detection.md): takes each pump's last refill-cycle
/// flow factor from the 16 <see cref="CohortFlowTallyGrain"/>s, which keep them from the <c>pumpfleet-log</c> stream
/// (with <c>Streaming:Enabled=false</c>, no stream to keep them: from <c>pf_pump_status</c>), runs <see cref="CohortFlowDeviation.Evaluate"/> (pure, in Domain), and keeps
/// one open warning per cohort on the cohort's stream <c>cohort-flow:{dimension}:{value}</c>, written through that
/// stream's grain (<see cref="ICohortSignalGrain.SetFindingAsync"/>), which the dashboard acknowledges and resolves
/// through too. An open warning whose cohort no longer signals (or is no longer tested) is resolved. Then every pump of
/// a warned cohort is told its correction, and every pump of a resolved one told to drop it
/// (<see cref="IPumpMonitorGrain.SetFlowCorrectionAsync"/>): the pump's depletion-risk alert and stored refill-due date
/// take the factor (docs/detection.md).
/// </summary>
public sealed partial class CohortFlowJob(
    NpgsqlDataSource dataSource, IGrainFactory grains, IOptions<AnomalyDetectionOptions> options, TimeProvider time,
    IConfiguration configuration, ILogger<CohortFlowJob> logger) : BackgroundService
{
    private readonly bool _fromStream = configuration.GetValue("Streaming:Enabled", true);

    private const string SamplesQuery = """
        SELECT serial, model, firmware, lot, refill_flow_at, refill_flow_factor, refill_flow_cycle_ml
        FROM pf_pump_status
        WHERE refill_flow_factor IS NOT NULL AND refill_flow_at >= $1
        """;

    private const string OpenQuery = """
        SELECT id, serial, detected_at, CASE WHEN jsonb_typeof(evidence -> 'factor') = 'number' THEN (evidence ->> 'factor')::double precision END
        FROM pf_anomalies WHERE kind = $1 AND status <> 'resolved'
        """;

    // The pumps whose correction may have to change: those of a warned cohort, and those still holding one (whose
    // warning may have resolved). pf_pump_status_lot, pf_pump_status_cohort (model first) and the partial index on
    // flow_anomaly_id serve it (migration 028).
    private const string PumpsQuery = """
        SELECT serial, model, firmware, lot, flow_anomaly_id, flow_factor
        FROM pf_pump_status
        WHERE status <> 'inactive' AND (flow_anomaly_id IS NOT NULL OR lot = ANY($1) OR model = ANY($2) OR firmware = ANY($3))
        """;

    /// <inheritdoc />
    protected override Task ExecuteAsync(CancellationToken stoppingToken) =>
        options.Value.RunFleetJobs
            ? FleetJobLoop.RunAsync(options.Value.CohortCheckInterval, time, RunOnceAsync, LogRunFailed, stoppingToken)
            : Task.CompletedTask;

    /// <summary>
    /// One run: opens and resolves the cohorts' warnings, then tells every pump whose correction changed
    /// (<see cref="TellPumpsAsync(IReadOnlyList{CohortFlowCorrection}, CancellationToken)"/>). Returns the warning events
    /// appended (opened and resolved).
    /// </summary>
    public async Task<IReadOnlyList<PumpEvent>> RunOnceAsync(CancellationToken ct)
    {
        var o = options.Value;
        var now = time.GetUtcNow();
        var samples = new List<RefillFlowSample>();
        List<CohortFlowCorrection> open;
        try
        {
            if (_fromStream)
            {
                samples = await FromTalliesAsync(grains, now - o.CohortFlowWindow);
            }
            else
            {
                await using var cmd = dataSource.CreateCommand(SamplesQuery);
                cmd.Parameters.Add(new NpgsqlParameter { Value = (now - o.CohortFlowWindow).UtcDateTime });
                await using var reader = await cmd.ExecuteReaderAsync(ct);
                while (await reader.ReadAsync(ct))
                {
                    samples.Add(new RefillFlowSample(reader.GetString(0), Nullable(reader, 1), Nullable(reader, 2), Nullable(reader, 3),
                        reader.GetFieldValue<DateTimeOffset>(4), reader.GetDouble(5), reader.IsDBNull(6) ? 0 : reader.GetDouble(6)));
                }
            }

            open = await OpenWarningsAsync(ct);
        }
        catch (PostgresException e) when (e.SqlState is PostgresErrorCodes.UndefinedTable or PostgresErrorCodes.UndefinedColumn)
        {
            LogNoReadModel();
            return [];
        }

        var openStreams = open.Select(c => c.Cohort.StreamId).ToHashSet(StringComparer.Ordinal);
        var appended = new List<PumpEvent>();
        var signalling = new HashSet<string>(StringComparer.Ordinal);
        foreach (var r in CohortFlowDeviation.Evaluate(samples, o, now).Where(r => r.Signals))
        {
            signalling.Add(r.Cohort.StreamId);
            if (openStreams.Contains(r.Cohort.StreamId))
            {
                continue;   // already open: the grain would add nothing
            }

            var finding = new CohortSignalFinding { Summary = r.Summary(o.CohortFlowMargin), Evidence = r.Evidence(o.CohortFlowMargin) };
            if (await grains.GetGrain<ICohortSignalGrain>(r.Cohort.StreamId).SetFindingAsync(AnomalyKinds.CohortFlowDeviation, finding) is { } e)
            {
                appended.Add(e);
                LogWarning(r.Cohort.StreamId, finding.Summary);
                if (e is AnomalyDetected d && CohortFlowCorrection.From(d.AnomalyId, r.Cohort.StreamId, d.Kind, "open", d.At,
                        d.Evidence.TryGetValue("factor", out var f) ? f : null) is { } opened)
                {
                    open.Add(opened);
                }
            }
        }

        // An open warning whose cohort no longer signals (or is no longer tested) is resolved: its pumps drop the factor.
        foreach (var c in open.ToList().Where(c => !signalling.Contains(c.Cohort.StreamId)))
        {
            if (await grains.GetGrain<ICohortSignalGrain>(c.Cohort.StreamId).SetFindingAsync(AnomalyKinds.CohortFlowDeviation, null) is { } e)
            {
                appended.Add(e);
            }

            open.Remove(c);
        }

        await TellPumpsAsync(open, ct);
        return appended;
    }

    /// <summary>
    /// Every pump's refill-flow sample closed at or after <paramref name="since"/>, from the 16 flow tally grains' memory
    /// (<see cref="CohortFlowTallyGrain"/>, fed by the log stream): no query.
    /// </summary>
    public static async Task<List<RefillFlowSample>> FromTalliesAsync(IGrainFactory grains, DateTimeOffset since)
    {
        ArgumentNullException.ThrowIfNull(grains);
        var parts = await Task.WhenAll(Enumerable.Range(0, LogPartitioning.Count).Select(p =>
            grains.GetGrain<ICohortFlowTallyGrain>(p.ToString(CultureInfo.InvariantCulture)).GetSamplesAsync(since)));
        return [.. parts.SelectMany(x => x).Select(s => s.ToSample())];
    }

    /// <summary>
    /// Tells the pumps the corrections the open warnings in the anomaly read model call for (what a run does after its
    /// tests). Returns the pumps whose correction changed.
    /// </summary>
    public async Task<int> TellPumpsAsync(CancellationToken ct) => await TellPumpsAsync(await OpenWarningsAsync(ct), ct);

    /// <summary>
    /// Tells each pump of a cohort with an open warning, and each pump still holding a correction, the correction it
    /// should hold now (<see cref="CohortFlowCorrection.For"/>: the largest deviation of the warned cohorts containing
    /// it, or none), through its grain (<see cref="IPumpMonitorGrain.SetFlowCorrectionAsync"/>), which appends
    /// <c>flow-correction.changed</c> and decides its depletion risk again. Only pumps whose row differs are called; a
    /// grain that has it already (the row lags the grain by a projection page) appends nothing. A failed call is
    /// logged and retried at the next run (the row still differs). Returns the pumps whose correction changed.
    /// </summary>
    public async Task<int> TellPumpsAsync(IReadOnlyList<CohortFlowCorrection> open, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(open);
        var pumps = new List<(string Serial, PumpFlowCorrection? Wanted)>();
        string[] Values(string dimension) => [.. open.Where(c => c.Cohort.Dimension == dimension).Select(c => c.Cohort.Value).Distinct(StringComparer.Ordinal)];
        try
        {
            await using var cmd = dataSource.CreateCommand(PumpsQuery);
            foreach (var dimension in new[] { FlowCohortKey.Lot, FlowCohortKey.Model, FlowCohortKey.Firmware })
            {
                cmd.Parameters.Add(new NpgsqlParameter { Value = Values(dimension), NpgsqlDbType = NpgsqlTypes.NpgsqlDbType.Array | NpgsqlTypes.NpgsqlDbType.Text });
            }

            await using var reader = await cmd.ExecuteReaderAsync(ct);
            while (await reader.ReadAsync(ct))
            {
                var wanted = CohortFlowCorrection.For(Nullable(reader, 1), Nullable(reader, 2), Nullable(reader, 3), open);
                var heldId = Nullable(reader, 4);
                double? heldFactor = reader.IsDBNull(5) ? null : reader.GetDouble(5);
                if (wanted?.AnomalyId != heldId || (wanted is not null && !wanted.Factor.Equals(heldFactor)))
                {
                    pumps.Add((reader.GetString(0), wanted is null ? null : new PumpFlowCorrection
                    {
                        AnomalyId = wanted.AnomalyId, Cohort = wanted.Cohort.StreamId, Factor = wanted.Factor, Since = wanted.DetectedAt,
                    }));
                }
            }
        }
        catch (PostgresException e) when (e.SqlState is PostgresErrorCodes.UndefinedTable or PostgresErrorCodes.UndefinedColumn)
        {
            LogNoReadModel();
            return 0;
        }

        var changed = 0;
        await Parallel.ForEachAsync(pumps, new ParallelOptions { MaxDegreeOfParallelism = options.Value.MonitorParallelism, CancellationToken = ct },
            async (p, _) =>
            {
                try
                {
                    if (await grains.GetGrain<IPumpMonitorGrain>(p.Serial).SetFlowCorrectionAsync(p.Wanted))
                    {
                        Interlocked.Increment(ref changed);
                    }
                }
                catch (Exception e) when (e is not OperationCanceledException)
                {
                    LogTellFailed(e, p.Serial);
                }
            });
        if (pumps.Count > 0)
        {
            LogTold(pumps.Count, changed);
        }

        return changed;
    }

    // The open (or acknowledged) cohort-flow-deviation warnings with a usable factor.
    private async Task<List<CohortFlowCorrection>> OpenWarningsAsync(CancellationToken ct)
    {
        var open = new List<CohortFlowCorrection>();
        await using var cmd = dataSource.CreateCommand(OpenQuery);
        cmd.Parameters.Add(new NpgsqlParameter { Value = AnomalyKinds.CohortFlowDeviation });
        await using var reader = await cmd.ExecuteReaderAsync(ct);
        while (await reader.ReadAsync(ct))
        {
            if (CohortFlowCorrection.From(reader.GetString(0), reader.GetString(1), AnomalyKinds.CohortFlowDeviation, "open",
                    reader.GetFieldValue<DateTimeOffset>(2), reader.IsDBNull(3) ? null : reader.GetDouble(3)) is { } c)
            {
                open.Add(c);
            }
        }

        return open;
    }

    private static string? Nullable(NpgsqlDataReader reader, int i) => reader.IsDBNull(i) ? null : reader.GetString(i);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Cohort flow run failed; retrying at the next interval")]
    private partial void LogRunFailed(Exception e);

    [LoggerMessage(Level = LogLevel.Information, Message = "Cohort flow run: pf_pump_status has no refill flow columns yet")]
    private partial void LogNoReadModel();

    [LoggerMessage(Level = LogLevel.Warning, Message = "Cohort flow: telling pump {Serial} its correction failed; retried at the next run")]
    private partial void LogTellFailed(Exception e, string serial);

    [LoggerMessage(Level = LogLevel.Information, Message = "Cohort flow: {Pumps} pumps' corrections differed from the read model; {Changed} changed")]
    private partial void LogTold(int pumps, int changed);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Cohort flow deviation on {Stream}: {Summary}")]
    private partial void LogWarning(string stream, string summary);
}
