using Npgsql;
using NpgsqlTypes;
using PumpFleet.EventStore;
using PumpFleet.EventStore.Log;
using PumpFleet.Projections;

namespace PumpFleet.ReadModels;

/// <summary>
/// <c>pf_ingest_daily</c>: events stored per UTC day of receipt and log partition, device events (with a seq) apart
/// from platform events. A count cannot be made idempotent by stream version the way a row of state is, so each
/// partition keeps its last counted log position (<c>pf_ingest_marks</c>) in the same transaction and skips anything
/// at or before it: a page offered twice adds nothing.
/// </summary>
public sealed class IngestProjection : IProjection
{
    /// <summary>The projection's name.</summary>
    public const string ProjectionName = "ingest";

    /// <inheritdoc />
    public string Name => ProjectionName;

    /// <inheritdoc />
    public IReadOnlyList<string> Tables { get; } = ["pf_ingest_daily", "pf_ingest_marks"];

    /// <inheritdoc />
    public async Task ApplyAsync(NpgsqlConnection conn, NpgsqlTransaction tx, IReadOnlyList<StoredEvent> events, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(events);
        if (events.Count == 0)
        {
            return;
        }

        // A page is usually one log partition; grouping keeps the rule exact if a caller ever hands over several.
        var counts = new SortedDictionary<(short Partition, DateOnly Day), (long Device, long Platform)>();
        var last = new SortedDictionary<short, GlobalCheckpoint>();
        var marks = await MarksAsync(conn, tx, [.. events.Select(e => (short)LogPartitioning.PartitionOf(e.StreamId)).Distinct()], ct);
        foreach (var e in events)
        {
            var partition = (short)LogPartitioning.PartitionOf(e.StreamId);
            if (marks.TryGetValue(partition, out var mark) && e.Checkpoint.CompareTo(mark) <= 0)
            {
                continue;
            }

            var key = (partition, DateOnly.FromDateTime(e.ReceivedAt.UtcDateTime));
            var c = counts.GetValueOrDefault(key);
            counts[key] = e.Seq is null ? (c.Device, c.Platform + 1) : (c.Device + 1, c.Platform);
            if (!last.TryGetValue(partition, out var l) || e.Checkpoint.CompareTo(l) > 0)
            {
                last[partition] = e.Checkpoint;
            }
        }

        if (counts.Count == 0)
        {
            return;
        }

        await using var batch = new NpgsqlBatch(conn, tx);
        foreach (var ((partition, day), (device, platform)) in counts)
        {
            batch.BatchCommands.Add(new NpgsqlBatchCommand("""
                INSERT INTO pf_ingest_daily AS d (day, log_partition, device_events, platform_events) VALUES ($1, $2, $3, $4)
                ON CONFLICT (day, log_partition) DO UPDATE SET device_events = d.device_events + excluded.device_events,
                                                               platform_events = d.platform_events + excluded.platform_events
                """)
            { Parameters = { new() { Value = day }, new() { Value = partition }, new() { Value = device }, new() { Value = platform } } });
        }

        foreach (var (partition, checkpoint) in last)
        {
            batch.BatchCommands.Add(new NpgsqlBatchCommand("""
                INSERT INTO pf_ingest_marks (log_partition, transaction_id, global_position) VALUES ($1, $2, $3)
                ON CONFLICT (log_partition) DO UPDATE SET transaction_id = excluded.transaction_id, global_position = excluded.global_position
                """)
            { Parameters = { new() { Value = partition }, new() { Value = checked((long)checkpoint.TransactionId) }, new() { Value = checkpoint.Position } } });
        }

        await batch.ExecuteNonQueryAsync(ct);
    }

    private static async Task<Dictionary<short, GlobalCheckpoint>> MarksAsync(NpgsqlConnection conn, NpgsqlTransaction tx, short[] partitions, CancellationToken ct)
    {
        // FOR UPDATE: two workers on one partition are already serialised by the checkpoint lock; this keeps the mark
        // right even for a caller without it.
        await using var cmd = new NpgsqlCommand(
            "SELECT log_partition, transaction_id, global_position FROM pf_ingest_marks WHERE log_partition = ANY($1) FOR UPDATE", conn, tx);
        cmd.Parameters.Add(new() { Value = partitions, NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Smallint });
        var marks = new Dictionary<short, GlobalCheckpoint>();
        await using var r = await cmd.ExecuteReaderAsync(ct);
        while (await r.ReadAsync(ct))
        {
            marks[r.GetInt16(0)] = new GlobalCheckpoint((ulong)r.GetInt64(1), r.GetInt64(2));
        }

        return marks;
    }
}
