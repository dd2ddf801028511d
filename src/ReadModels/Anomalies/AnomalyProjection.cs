using System.Text.Json;
using Npgsql;
using NpgsqlTypes;
using PumpFleet.Contracts.Events;
using PumpFleet.Contracts.Json;
using PumpFleet.EventStore;
using PumpFleet.Projections;

namespace PumpFleet.ReadModels;

/// <summary><c>pf_anomalies</c>: every platform-detected anomaly with its acknowledgement and resolution.</summary>
public sealed class AnomalyProjection : IProjection
{
    /// <summary>The projection's name.</summary>
    public const string ProjectionName = "anomalies";

    /// <inheritdoc />
    public string Name => ProjectionName;

    /// <inheritdoc />
    public IReadOnlyList<string> Tables { get; } = ["pf_anomalies"];

    /// <inheritdoc />
    public async Task ApplyAsync(NpgsqlConnection conn, NpgsqlTransaction tx, IReadOnlyList<StoredEvent> events, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(events);
        await using var batch = new NpgsqlBatch(conn, tx);
        foreach (var stored in events)
        {
            if (!stored.Type.StartsWith("anomaly.", StringComparison.Ordinal))
            {
                continue;
            }

            // Each statement is idempotent on its own (insert-if-absent, updates guarded by status), so a replay is harmless.
            switch (EventJson.Deserialize(stored.Type, stored.Data))
            {
                case AnomalyDetected x:
                    batch.BatchCommands.Add(Command("""
                        INSERT INTO pf_anomalies (id, serial, kind, severity, status, detected_at, summary, evidence)
                        VALUES ($1, $2, $3, $4, 'open', $5, $6, $7::jsonb) ON CONFLICT (id) DO NOTHING
                        """, x.AnomalyId, stored.StreamId, x.Kind, x.Severity, x.At.ToUniversalTime(), x.Summary,
                        JsonSerializer.Serialize(x.Evidence, EventJson.Options)));
                    break;
                case AnomalyAcknowledged x:
                    batch.BatchCommands.Add(Command("""
                        UPDATE pf_anomalies SET status = 'acknowledged', acknowledged_by = $2, acknowledged_at = $3, note = coalesce($4, note)
                        WHERE id = $1 AND status = 'open'
                        """, x.AnomalyId, x.By, x.At.ToUniversalTime(), x.Note));
                    break;
                case AnomalyResolved x:
                    batch.BatchCommands.Add(Command("""
                        UPDATE pf_anomalies SET status = 'resolved', resolved_by = $2, resolved_at = $3, note = coalesce($4, note)
                        WHERE id = $1 AND status <> 'resolved'
                        """, x.AnomalyId, x.By, x.At.ToUniversalTime(), x.Note));
                    break;
            }
        }

        if (batch.BatchCommands.Count > 0)
        {
            await batch.ExecuteNonQueryAsync(ct);
        }
    }

    private static NpgsqlBatchCommand Command(string sql, params object?[] values)
    {
        var cmd = new NpgsqlBatchCommand(sql);
        foreach (var v in values)
        {
            cmd.Parameters.Add(v is null ? new NpgsqlParameter { Value = DBNull.Value, NpgsqlDbType = NpgsqlDbType.Text } : new NpgsqlParameter { Value = v });
        }

        return cmd;
    }
}
