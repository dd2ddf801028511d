using System.Diagnostics;
using System.Runtime.CompilerServices;
using Npgsql;
using NpgsqlTypes;

namespace PumpFleet.EventStore;

/// <summary>The event store on PostgreSQL (schema in Sql/*.sql, applied by <see cref="SchemaMigrator"/>).</summary>
/// <remarks>
/// <see cref="AppendAsync(StreamAppend, CancellationToken)"/> goes through <paramref name="groupCommitter"/> when one
/// is given (group commit), else it commits alone through the same function (migration 042).
/// </remarks>
public sealed class NpgsqlEventStore(NpgsqlDataSource dataSource, EventStoreInstruments? instruments = null, GroupCommitter? groupCommitter = null)
    : IEventStore, Log.ILogPartitionReader, Log.ILogPartitionHorizonReader
{
    // One statement for the whole batch: arrays indexed server-side, so a batch of N events costs one round trip and
    // one parse, not N. The guard (stream at exactly the expected version, i.e. the previous event's row exists)
    // turns an expected version ahead of the stream into a concurrency error instead of a hole in the version
    // sequence. The recursive part chains each event's hash to the previous one (Sql/003_event_hash_chain.sql):
    // the previous hash of the stream is read in the same statement, so tamper evidence costs no extra round trip,
    // and the hash covers jsonb's canonical text of the payload, which is what any reader (and `verify`) gets back.
    // A stream whose previous event was archived (Sql/041) chains from the archive's anchor for it.
    private const string AppendSql = """
        WITH RECURSIVE prev AS (SELECT e.hash FROM pf_events e WHERE e.stream_id = $1 AND e.version = $2
                                UNION ALL SELECT a.hash FROM pf_event_archive_heads a WHERE a.stream_id = $1 AND a.version = $2),
        chain(ord, data, meta, h) AS (
            SELECT 0::bigint, NULL::jsonb, NULL::jsonb, (SELECT hash FROM prev)
            UNION ALL
            SELECT c.ord + 1, d.data, d.meta,
                   pf_event_hash(c.h, $1, $2 + c.ord + 1, ($3::uuid[])[c.ord + 1], ($4::text[])[c.ord + 1], ($5::bigint[])[c.ord + 1],
                                 ($6::timestamptz[])[c.ord + 1], ($7::timestamptz[])[c.ord + 1], ($8::boolean[])[c.ord + 1], d.data, d.meta)
            FROM chain c
            CROSS JOIN LATERAL (SELECT ($9::text[])[c.ord + 1]::jsonb AS data, ($10::text[])[c.ord + 1]::jsonb AS meta) AS d
            WHERE c.ord < cardinality($3::uuid[]))
        INSERT INTO pf_events (stream_id, version, event_id, event_type, seq, device_time, received_at, clock_suspect, data, metadata, hash)
        SELECT $1, $2 + c.ord, ($3::uuid[])[c.ord], ($4::text[])[c.ord], ($5::bigint[])[c.ord], ($6::timestamptz[])[c.ord],
               ($7::timestamptz[])[c.ord], ($8::boolean[])[c.ord], c.data, c.meta, c.h
        FROM chain c
        WHERE c.ord > 0 AND ($2 = 0 OR EXISTS (SELECT 1 FROM prev))
        ORDER BY c.ord
        """;

    // A consumer transaction idle for longer than this is ended by PostgreSQL (see LockAsync).
    private const int IdleInTransactionTimeoutMs = 30_000;

    private const string Columns =
        "global_position, transaction_id::text AS transaction_id_text, stream_id, version, event_id, event_type, seq, device_time, received_at, clock_suspect, data::text, metadata::text";

    /// <inheritdoc />
    public async Task<AppendResult> AppendAsync(string streamId, long expectedVersion, IReadOnlyList<EventToAppend> events, CancellationToken ct = default)
    {
        using var activity = EventStoreTracing.Source.StartActivity("append")?.SetTag("pumpfleet.stream_id", streamId).SetTag("pumpfleet.events", events.Count);
        ArgumentException.ThrowIfNullOrEmpty(streamId);
        ArgumentOutOfRangeException.ThrowIfNegative(expectedVersion);
        if (events.Count == 0)
        {
            return new AppendResult(expectedVersion, AlreadyStored: false);
        }

        var n = events.Count;
        var ids = new Guid[n];
        var types = new string[n];
        var seqs = new long?[n];
        var ats = new DateTime?[n];
        var recvs = new DateTime[n];
        var suspects = new bool[n];
        var datas = new string[n];
        var metas = new string?[n];
        for (var i = 0; i < n; i++)
        {
            var e = events[i];
            ids[i] = e.EventId;
            types[i] = e.Type;
            seqs[i] = e.Seq;
            ats[i] = e.DeviceTime?.UtcDateTime;
            recvs[i] = e.ReceivedAt.UtcDateTime;
            suspects[i] = e.ClockSuspect;
            datas[i] = e.Data;
            metas[i] = e.Metadata;
        }

        var started = Stopwatch.GetTimestamp();
        await using var conn = await dataSource.OpenConnectionAsync(ct);
        try
        {
            await using var cmd = new NpgsqlCommand(AppendSql, conn)
            {
                Parameters =
                {
                    new() { Value = streamId },
                    new() { Value = expectedVersion },
                    new() { Value = ids },
                    new() { Value = types },
                    new() { Value = seqs },
                    new() { Value = ats, NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.TimestampTz },
                    new() { Value = recvs, NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.TimestampTz },
                    new() { Value = suspects },
                    new() { Value = datas },
                    new() { Value = metas, NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Text },
                },
            };
            var inserted = await cmd.ExecuteNonQueryAsync(ct);
            if (inserted == 0)
            {
                return await ResolveConflictAsync(conn, streamId, expectedVersion, ids, null, ct);
            }

            instruments?.OnAppended(n, Stopwatch.GetElapsedTime(started));
            return new AppendResult(expectedVersion + n, AlreadyStored: false);
        }
        catch (PostgresException e) when (e.SqlState == PostgresErrorCodes.UniqueViolation)
        {
            return await ResolveConflictAsync(conn, streamId, expectedVersion, ids, e, ct);
        }
        catch (Exception) when (instruments is not null && Count(instruments, "append"))
        {
            throw;
        }
    }

    /// <inheritdoc />
    public async Task<AppendResult> AppendAsync(StreamAppend append, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(append);
        ArgumentException.ThrowIfNullOrEmpty(append.StreamId);
        ArgumentOutOfRangeException.ThrowIfNegative(append.ExpectedVersion);
        using var activity = EventStoreTracing.Source.StartActivity("append")?.SetTag("pumpfleet.stream_id", append.StreamId)
            .SetTag("pumpfleet.events", append.Events.Count).SetTag("pumpfleet.snapshot", append.Snapshot is not null);
        if (append.Events.Count == 0)
        {
            return new AppendResult(append.ExpectedVersion, AlreadyStored: false);
        }

        if (groupCommitter is not null)
        {
            return await groupCommitter.AppendAsync(append, ct);
        }

        var request = new GroupCommitter.Request(append, activity);
        request.TryStart();
        await GroupCommitter.ExecuteAsync(dataSource, [request], instruments, setBased: true, ct);
        // Completed by ExecuteAsync above, which never leaves a request pending.
#pragma warning disable VSTHRD003
        return await request.Completion.Task;
#pragma warning restore VSTHRD003
    }

    private static bool Count(EventStoreInstruments instruments, string operation)
    {
        instruments.OnError(operation);
        return false;
    }

    // A conflict is either a real concurrent writer or our own earlier attempt that committed while we saw an error.
    // The event ids tell them apart: all present means the batch is already stored, exactly once.
    private async Task<AppendResult> ResolveConflictAsync(
        NpgsqlConnection conn, string streamId, long expectedVersion, Guid[] ids, Exception? inner, CancellationToken ct)
    {
        await using var cmd = new NpgsqlCommand(
            "SELECT count(*), coalesce(max(version), 0) FROM pf_events WHERE stream_id = $1 AND event_id = ANY($2)", conn)
        {
            Parameters = { new() { Value = streamId }, new() { Value = ids } },
        };
        await using var r = await cmd.ExecuteReaderAsync(ct);
        await r.ReadAsync(ct);
        var found = r.GetInt64(0);
        var maxVersion = r.GetInt64(1);
        if (found == ids.Length)
        {
            return new AppendResult(maxVersion, AlreadyStored: true);
        }

        instruments?.OnError("append-conflict");
        throw new WrongExpectedVersionException(streamId, expectedVersion, inner);
    }

    /// <inheritdoc />
    public async IAsyncEnumerable<StoredEvent> ReadStreamAsync(string streamId, long afterVersion = 0, [EnumeratorCancellation] CancellationToken ct = default)
    {
        await using var cmd = dataSource.CreateCommand(
            $"SELECT {Columns} FROM pf_events WHERE stream_id = $1 AND version > $2 ORDER BY version");
        cmd.Parameters.Add(new() { Value = streamId });
        cmd.Parameters.Add(new() { Value = afterVersion });
        await using var r = await cmd.ExecuteReaderAsync(ct);
        while (await r.ReadAsync(ct))
        {
            yield return ReadEvent(r);
        }
    }

    /// <inheritdoc />
    public async IAsyncEnumerable<StoredEvent> ReadStreamAsOfAsync(
        string streamId, long afterVersion, DateTimeOffset asOf, [EnumeratorCancellation] CancellationToken ct = default)
    {
        // The same event time as the as-of fold (PumpAsOf): device time unless the clock was suspect, then the
        // receive time; a platform event's own "at". Filtering here keeps the rows after the time off the wire.
        await using var cmd = dataSource.CreateCommand($"""
            SELECT {Columns} FROM pf_events
            WHERE stream_id = $1 AND version > $2
              AND (event_type IN ('device.identified', 'pump.paired')
                   OR CASE WHEN seq IS NULL THEN (data->>'at')::timestamptz
                           WHEN clock_suspect THEN received_at
                           ELSE device_time END <= $3)
            ORDER BY version
            """);
        cmd.Parameters.Add(new() { Value = streamId });
        cmd.Parameters.Add(new() { Value = afterVersion });
        cmd.Parameters.Add(new() { Value = asOf.ToUniversalTime(), NpgsqlDbType = NpgsqlDbType.TimestampTz });
        await using var r = await cmd.ExecuteReaderAsync(ct);
        while (await r.ReadAsync(ct))
        {
            yield return ReadEvent(r);
        }
    }

    /// <inheritdoc />
    public async Task<IReadOnlyList<StoredEvent>> ReadStreamBySeqAsync(string streamId, long afterSeq, int maxCount, CancellationToken ct = default)
    {
        await using var cmd = dataSource.CreateCommand(
            $"SELECT {Columns} FROM pf_events WHERE stream_id = $1 AND seq > $2 ORDER BY seq LIMIT $3");
        cmd.Parameters.Add(new() { Value = streamId });
        cmd.Parameters.Add(new() { Value = afterSeq });
        cmd.Parameters.Add(new() { Value = maxCount });
        return await ReadAllRowsAsync(cmd, ct);
    }

    // The columns of Columns by their names in the merge below, whose branches also carry transaction_id for the order.
    private const string MergedColumns =
        "global_position, transaction_id_text, stream_id, version, event_id, event_type, seq, device_time, received_at, clock_suspect, data, metadata";

    // The global reader's page: the sixteen partitions' pages (each one range of the partition index, as
    // PartitionPageSql) merged in the log's order (LogOrder). Each branch stops at the page size, the merge takes the
    // first page-size rows of their union in order, so the rows are exactly those of one range of the whole log's order.
    // Rows of transactions at or above xmin may still be joined by rows of older, still-open transactions with lower
    // positions, so the reader stops below the horizon; they are read on a later call.
    internal static readonly string ReadAllSql = $"""
        SELECT {MergedColumns} FROM (
            {Log.LogOrder.EveryPartition(p => $"""
                SELECT transaction_id, {Columns} FROM pf_events
                WHERE log_partition = {p} AND (transaction_id, global_position) > ($1::text::xid8, $2)
                  AND transaction_id < pg_snapshot_xmin(pg_current_snapshot())
                ORDER BY transaction_id, global_position LIMIT $3
                """)}) e
        ORDER BY transaction_id, global_position
        LIMIT $3
        """;

    /// <inheritdoc />
    public async Task<GlobalPage> ReadAllAsync(GlobalCheckpoint after, int maxCount, CancellationToken ct = default)
    {
        await using var cmd = dataSource.CreateCommand(ReadAllSql);
        cmd.Parameters.Add(new() { Value = after.TransactionId.ToString(System.Globalization.CultureInfo.InvariantCulture) });
        cmd.Parameters.Add(new() { Value = after.Position });
        cmd.Parameters.Add(new() { Value = maxCount });
        var events = await ReadAllRowsAsync(cmd, ct);
        return new GlobalPage(events, events.Count == 0 ? after : events[^1].Checkpoint);
    }

    // One partition's page after a checkpoint, below the gap-safe horizon, on the partition's own index range
    // (migration 007): the plain partition read and the read with its horizon (LogTailCache) use the same statement.
    // Since migration 047 that index is the only one in the log's reading order, so the planner has no other index to
    // walk for it. (With the whole log's (transaction_id, global_position) index still there, the planner took that one
    // whenever its statistics said few rows follow the checkpoint, a month partition not yet analysed since it grew, and
    // filtered out the other fifteen partitions' rows one heap fetch at a time: 81 ms against 0.6 ms per page of 500 in
    // the ninth session's million run. The statement written so that only the partition index fitted, with row
    // comparisons led by log_partition on both bounds, cost 1.5x the server's CPU per event on long pages.)
    private const string PartitionPageSql = $"""
        SELECT {Columns} FROM pf_events
        WHERE log_partition = $4 AND (transaction_id, global_position) > ($1::text::xid8, $2)
          AND transaction_id < pg_snapshot_xmin(pg_current_snapshot())
        ORDER BY transaction_id, global_position
        LIMIT $3
        """;

    private static void AddPartitionPageParameters(NpgsqlParameterCollection parameters, int partition, GlobalCheckpoint after, int limit)
    {
        parameters.Add(new() { Value = after.TransactionId.ToString(System.Globalization.CultureInfo.InvariantCulture) });
        parameters.Add(new() { Value = after.Position });
        parameters.Add(new() { Value = limit });
        parameters.Add(new() { Value = (short)partition });
    }

    /// <inheritdoc />
    public async Task<GlobalPage> ReadPartitionAsync(int partition, GlobalCheckpoint after, int limit, CancellationToken ct = default)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(partition);
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(partition, Log.LogPartitioning.Count);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(limit);
        // The same horizon as ReadAllAsync, on the partition's own index range (migration 007).
        await using var cmd = dataSource.CreateCommand(PartitionPageSql);
        AddPartitionPageParameters(cmd.Parameters, partition, after, limit);
        var events = await ReadAllRowsAsync(cmd, ct);
        return new GlobalPage(events, events.Count == 0 ? after : events[^1].Checkpoint);
    }

    /// <inheritdoc />
    public async Task<(GlobalPage Page, ulong Horizon)> ReadPartitionWithHorizonAsync(int partition, GlobalCheckpoint after, int limit, CancellationToken ct = default)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(partition);
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(partition, Log.LogPartitioning.Count);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(limit);
        // Two statements, one round trip. The horizon is taken by the first, so it is at or below the page's own
        // (the oldest transaction in flight only moves forward): every transaction below it had ended when the page
        // was read, so a short page holds every event of the partition after `after` below it (LogTailCache).
        await using var batch = dataSource.CreateBatch();
        batch.BatchCommands.Add(new NpgsqlBatchCommand("SELECT pg_snapshot_xmin(pg_current_snapshot())::text"));
        var read = new NpgsqlBatchCommand(PartitionPageSql);
        AddPartitionPageParameters(read.Parameters, partition, after, limit);
        batch.BatchCommands.Add(read);
        await using var r = await batch.ExecuteReaderAsync(ct);
        await r.ReadAsync(ct);
        var horizon = ulong.Parse(r.GetString(0), System.Globalization.CultureInfo.InvariantCulture);
        await r.NextResultAsync(ct);
        var events = new List<StoredEvent>();
        while (await r.ReadAsync(ct))
        {
            events.Add(ReadEvent(r));
        }

        return (new GlobalPage(events, events.Count == 0 ? after : events[^1].Checkpoint), horizon);
    }

    /// <inheritdoc />
    public async Task<GlobalCheckpoint?> ReadPartitionHeadAsync(int partition, CancellationToken ct = default)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(partition);
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(partition, Log.LogPartitioning.Count);
        // The last entry of the partition's index range (migration 007).
        await using var cmd = dataSource.CreateCommand("""
            SELECT transaction_id::text AS tx, global_position FROM pf_events
            WHERE log_partition = $1
            ORDER BY transaction_id DESC, global_position DESC LIMIT 1
            """);
        cmd.Parameters.Add(new() { Value = (short)partition });
        await using var r = await cmd.ExecuteReaderAsync(ct);
        return await r.ReadAsync(ct)
            ? new GlobalCheckpoint(ulong.Parse(r.GetString(0), System.Globalization.CultureInfo.InvariantCulture), r.GetInt64(1))
            : null;
    }

    /// <inheritdoc />
    public async Task<long> CountPartitionAfterAsync(int partition, GlobalCheckpoint after, long cap, CancellationToken ct = default)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(partition);
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(partition, Log.LogPartitioning.Count);
        // One range of the partition's index, as the page read above (the lag gauge's count, which the same planner trap
        // took to 6 ms a call at 5,000 events/s while the whole log's index existed, issue 15 h15w).
        await using var cmd = dataSource.CreateCommand("""
            SELECT count(*) FROM (SELECT 1 FROM pf_events
                WHERE log_partition = $4 AND (transaction_id, global_position) > ($1::text::xid8, $2) LIMIT $3) x
            """);
        cmd.Parameters.Add(new() { Value = after.TransactionId.ToString(System.Globalization.CultureInfo.InvariantCulture) });
        cmd.Parameters.Add(new() { Value = after.Position });
        cmd.Parameters.Add(new() { Value = cap });
        cmd.Parameters.Add(new() { Value = (short)partition });
        return (long)(await cmd.ExecuteScalarAsync(ct) ?? 0L);
    }

    /// <inheritdoc />
    public async Task<GlobalCheckpoint> AdvanceCheckpointAsync(string name, GlobalCheckpoint checkpoint, CancellationToken ct = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(name);
        // Only forward: a receiver that lost its queue to another silo must not move the new owner's position back.
        // The upsert and the read of what is stored go in one batch: one round trip and one transaction where there
        // were two of each (issue 15, h15w: the receivers and the partition tallies save 48 checkpoints a second). The
        // read is its own statement, so it sees the upsert's row, or the further position another owner stored.
        await using var batch = dataSource.CreateBatch();
        var upsert = new NpgsqlBatchCommand("""
            INSERT INTO pf_checkpoints AS c (name, transaction_id, global_position, updated_at) VALUES ($1, $2::text::xid8, $3, now())
            ON CONFLICT (name) DO UPDATE SET transaction_id = excluded.transaction_id,
                global_position = excluded.global_position, updated_at = excluded.updated_at
            WHERE (c.transaction_id, c.global_position) < (excluded.transaction_id, excluded.global_position)
            """);
        upsert.Parameters.Add(new() { Value = name });
        upsert.Parameters.Add(new() { Value = checkpoint.TransactionId.ToString(System.Globalization.CultureInfo.InvariantCulture) });
        upsert.Parameters.Add(new() { Value = checkpoint.Position });
        batch.BatchCommands.Add(upsert);
        var load = new NpgsqlBatchCommand("SELECT transaction_id::text AS transaction_id_text, global_position FROM pf_checkpoints WHERE name = $1");
        load.Parameters.Add(new() { Value = name });
        batch.BatchCommands.Add(load);
        await using var r = await batch.ExecuteReaderAsync(ct);
        return await r.ReadAsync(ct)
            ? new GlobalCheckpoint(ulong.Parse(r.GetString(0), System.Globalization.CultureInfo.InvariantCulture), r.GetInt64(1))
            : throw new InvalidOperationException($"Checkpoint '{name}' vanished right after it was saved.");
    }

    /// <inheritdoc />
    public async Task SaveSnapshotAsync(Snapshot snapshot, CancellationToken ct = default)
    {
        await using var cmd = dataSource.CreateCommand("""
            INSERT INTO pf_snapshots (stream_id, version, schema_version, state, taken_at) VALUES ($1, $2, $3, $4::jsonb, now())
            ON CONFLICT (stream_id) DO UPDATE SET version = excluded.version, schema_version = excluded.schema_version,
                state = excluded.state, taken_at = excluded.taken_at
            WHERE pf_snapshots.version < excluded.version OR pf_snapshots.schema_version <> excluded.schema_version
            """);
        cmd.Parameters.Add(new() { Value = snapshot.StreamId });
        cmd.Parameters.Add(new() { Value = snapshot.Version });
        cmd.Parameters.Add(new() { Value = snapshot.SchemaVersion });
        cmd.Parameters.Add(new() { Value = snapshot.State });
        await cmd.ExecuteNonQueryAsync(ct);
    }

    /// <inheritdoc />
    public async Task<Snapshot?> LoadSnapshotAsync(string streamId, CancellationToken ct = default)
    {
        await using var cmd = dataSource.CreateCommand(
            "SELECT version, schema_version, state::text FROM pf_snapshots WHERE stream_id = $1");
        cmd.Parameters.Add(new() { Value = streamId });
        await using var r = await cmd.ExecuteReaderAsync(ct);
        return await r.ReadAsync(ct) ? new Snapshot(streamId, r.GetInt64(0), r.GetInt32(1), r.GetString(2)) : null;
    }

    /// <inheritdoc />
    public async Task<StreamTail> LoadSnapshotAndTailAsync(string streamId, int schemaVersion, CancellationToken ct = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(streamId);
        // The snapshot comes back as a row of its own (part 0: its version in the version column, its state in the data
        // column) ahead of the events (part 1); the event columns keep their ordinals, so ReadEvent reads those rows.
        await using var cmd = dataSource.CreateCommand($"""
            WITH s AS (SELECT version, state FROM pf_snapshots WHERE stream_id = $1 AND schema_version = $2)
            SELECT NULL::bigint, NULL::text, NULL::text, s.version, NULL::uuid, NULL::text, NULL::bigint, NULL::timestamptz,
                   NULL::timestamptz, NULL::boolean, s.state::text, NULL::text, 0 AS part
            FROM s
            UNION ALL
            SELECT {Columns}, 1 FROM pf_events
            WHERE stream_id = $1 AND version > COALESCE((SELECT version FROM s), 0)
            ORDER BY part, version
            """);
        cmd.Parameters.Add(new() { Value = streamId });
        cmd.Parameters.Add(new() { Value = schemaVersion });
        await using var r = await cmd.ExecuteReaderAsync(ct);
        Snapshot? snapshot = null;
        var events = new List<StoredEvent>();
        while (await r.ReadAsync(ct))
        {
            if (r.GetInt32(12) == 0)
            {
                snapshot = new Snapshot(streamId, r.GetInt64(3), schemaVersion, r.GetString(10));
            }
            else
            {
                events.Add(ReadEvent(r));
            }
        }

        return new StreamTail(snapshot, events);
    }

    /// <inheritdoc />
    public async Task SaveHistoricalSnapshotAsync(Snapshot snapshot, DateTimeOffset coversUntil, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(snapshot);
        await using var cmd = dataSource.CreateCommand("""
            INSERT INTO pf_snapshot_history (stream_id, version, schema_version, covers_until, state, taken_at)
            VALUES ($1, $2, $3, $4, $5::jsonb, now())
            ON CONFLICT (stream_id, version) DO NOTHING
            """);
        cmd.Parameters.Add(new() { Value = snapshot.StreamId });
        cmd.Parameters.Add(new() { Value = snapshot.Version });
        cmd.Parameters.Add(new() { Value = snapshot.SchemaVersion });
        cmd.Parameters.Add(new() { Value = coversUntil.ToUniversalTime(), NpgsqlDbType = NpgsqlDbType.TimestampTz });
        cmd.Parameters.Add(new() { Value = snapshot.State });
        await cmd.ExecuteNonQueryAsync(ct);
    }

    /// <inheritdoc />
    public async Task<Snapshot?> LoadSnapshotAsOfAsync(string streamId, DateTimeOffset asOf, int schemaVersion, CancellationToken ct = default)
    {
        await using var cmd = dataSource.CreateCommand("""
            SELECT version, schema_version, state::text FROM pf_snapshot_history
            WHERE stream_id = $1 AND schema_version = $2 AND covers_until <= $3
            ORDER BY version DESC LIMIT 1
            """);
        cmd.Parameters.Add(new() { Value = streamId });
        cmd.Parameters.Add(new() { Value = schemaVersion });
        cmd.Parameters.Add(new() { Value = asOf.ToUniversalTime(), NpgsqlDbType = NpgsqlDbType.TimestampTz });
        await using var r = await cmd.ExecuteReaderAsync(ct);
        return await r.ReadAsync(ct) ? new Snapshot(streamId, r.GetInt64(0), r.GetInt32(1), r.GetString(2)) : null;
    }

    /// <inheritdoc />
    public async Task<GlobalCheckpoint> LoadCheckpointAsync(string name, CancellationToken ct = default)
    {
        await using var cmd = dataSource.CreateCommand(
            "SELECT transaction_id::text AS transaction_id_text, global_position FROM pf_checkpoints WHERE name = $1");
        cmd.Parameters.Add(new() { Value = name });
        await using var r = await cmd.ExecuteReaderAsync(ct);
        return await r.ReadAsync(ct)
            ? new GlobalCheckpoint(ulong.Parse(r.GetString(0), System.Globalization.CultureInfo.InvariantCulture), r.GetInt64(1))
            : GlobalCheckpoint.Start;
    }

    /// <inheritdoc />
    public async Task<IReadOnlyDictionary<string, GlobalCheckpoint>> LoadCheckpointsAsync(IReadOnlyCollection<string> names, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(names);
        var result = new Dictionary<string, GlobalCheckpoint>(StringComparer.Ordinal);
        if (names.Count == 0)
        {
            return result;
        }

        await using var cmd = dataSource.CreateCommand(
            "SELECT name, transaction_id::text AS transaction_id_text, global_position FROM pf_checkpoints WHERE name = ANY($1)");
        cmd.Parameters.Add(new() { Value = names.ToArray() });
        await using var r = await cmd.ExecuteReaderAsync(ct);
        while (await r.ReadAsync(ct))
        {
            result[r.GetString(0)] = new GlobalCheckpoint(ulong.Parse(r.GetString(1), System.Globalization.CultureInfo.InvariantCulture), r.GetInt64(2));
        }

        foreach (var name in names)
        {
            result.TryAdd(name, GlobalCheckpoint.Start);
        }

        return result;
    }

    /// <inheritdoc />
    public async Task SaveCheckpointAsync(string name, GlobalCheckpoint checkpoint, CancellationToken ct = default)
    {
        await using var cmd = dataSource.CreateCommand("""
            INSERT INTO pf_checkpoints (name, transaction_id, global_position, updated_at) VALUES ($1, $2::text::xid8, $3, now())
            ON CONFLICT (name) DO UPDATE SET transaction_id = excluded.transaction_id,
                global_position = excluded.global_position, updated_at = excluded.updated_at
            """);
        cmd.Parameters.Add(new() { Value = name });
        cmd.Parameters.Add(new() { Value = checkpoint.TransactionId.ToString(System.Globalization.CultureInfo.InvariantCulture) });
        cmd.Parameters.Add(new() { Value = checkpoint.Position });
        await cmd.ExecuteNonQueryAsync(ct);
    }

    // The newest event in the log's order: each partition's last entry of the partition index, the newest of the sixteen.
    private static readonly string HeadSql = $"""
        SELECT transaction_id::text AS tx, global_position, received_at FROM (
            {Log.LogOrder.EveryPartition(p => $"""
                SELECT transaction_id, global_position, received_at FROM pf_events WHERE log_partition = {p}
                ORDER BY transaction_id DESC, global_position DESC LIMIT 1
                """)}) e
        ORDER BY transaction_id DESC, global_position DESC LIMIT 1
        """;

    /// <inheritdoc />
    public async Task<LogHead?> ReadHeadAsync(CancellationToken ct = default)
    {
        await using var cmd = dataSource.CreateCommand(HeadSql);
        await using var r = await cmd.ExecuteReaderAsync(ct);
        return await r.ReadAsync(ct)
            ? new LogHead(new GlobalCheckpoint(ulong.Parse(r.GetString(0), System.Globalization.CultureInfo.InvariantCulture), r.GetInt64(1)), await r.GetFieldValueAsync<DateTimeOffset>(2, ct))
            : null;
    }

    // Each log partition's range of the partition index after the checkpoint, stopped at the cap.
    private static readonly string CountAfterSql = $"""
        SELECT count(*) FROM (SELECT 1 FROM pf_events
            WHERE {Log.LogOrder.AnyPartition} AND (transaction_id, global_position) > ($1::text::xid8, $2) LIMIT $3) x
        """;

    /// <inheritdoc />
    public async Task<long> CountAfterAsync(GlobalCheckpoint after, long cap, CancellationToken ct = default)
    {
        await using var cmd = dataSource.CreateCommand(CountAfterSql);
        cmd.Parameters.Add(new() { Value = after.TransactionId.ToString(System.Globalization.CultureInfo.InvariantCulture) });
        cmd.Parameters.Add(new() { Value = after.Position });
        cmd.Parameters.Add(new() { Value = cap });
        return (long)(await cmd.ExecuteScalarAsync(ct) ?? 0L);
    }

    /// <inheritdoc />
    public Task<CheckpointTransaction> LockAsync(string name, CancellationToken ct = default) => LockAsync(name, [], static (_, _) => Task.CompletedTask, ct);

    /// <inheritdoc />
    public async Task<CheckpointTransaction> LockAsync(
        string name, IReadOnlyList<NpgsqlBatchCommand> alongside, Func<NpgsqlDataReader, CancellationToken, Task> readAlongside, CancellationToken ct = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(name);
        ArgumentNullException.ThrowIfNull(alongside);
        ArgumentNullException.ThrowIfNull(readAlongside);
        var conn = await dataSource.OpenConnectionAsync(ct);
        NpgsqlTransaction? tx = null;
        try
        {
            tx = await conn.BeginTransactionAsync(ct);

            // The global reader stops below the oldest open transaction on the whole server, so a worker that hangs inside
            // a page (a frozen process whose socket stays open) would stall every consumer: PostgreSQL ends such a
            // session after the timeout and the page is retried by the next activation. INSERT .. ON CONFLICT DO NOTHING
            // makes the row exist (a concurrent inserter waits on the unique index), and FOR UPDATE then reads the newest
            // committed position (each statement takes a new snapshot). One round trip for the three and the consumer's
            // own statements after them: the reader skips the results of the statements that return no rows.
            GlobalCheckpoint position;
            await using (var batch = new NpgsqlBatch(conn, tx))
            {
                batch.BatchCommands.Add(new NpgsqlBatchCommand($"SET LOCAL idle_in_transaction_session_timeout = '{IdleInTransactionTimeoutMs}ms'"));
                var insert = new NpgsqlBatchCommand("INSERT INTO pf_checkpoints (name, transaction_id, global_position) VALUES ($1, '0'::xid8, 0) ON CONFLICT (name) DO NOTHING");
                insert.Parameters.Add(new() { Value = name });
                batch.BatchCommands.Add(insert);
                var select = new NpgsqlBatchCommand("SELECT transaction_id::text, global_position FROM pf_checkpoints WHERE name = $1 FOR UPDATE");
                select.Parameters.Add(new() { Value = name });
                batch.BatchCommands.Add(select);
                foreach (var cmd in alongside)
                {
                    batch.BatchCommands.Add(cmd);
                }

                await using var r = await batch.ExecuteReaderAsync(ct);
                if (!await r.ReadAsync(ct))
                {
                    throw new InvalidOperationException($"Checkpoint row '{name}' vanished inside its own transaction.");
                }

                position = new GlobalCheckpoint(ulong.Parse(r.GetString(0), System.Globalization.CultureInfo.InvariantCulture), r.GetInt64(1));
                if (alongside.Count > 0)
                {
                    await r.NextResultAsync(ct);
                    await readAlongside(r, ct);
                }
            }

            return new CheckpointTransaction(conn, tx, name, null, position);
        }
        catch
        {
            if (tx is not null)
            {
                await tx.DisposeAsync();
            }

            await conn.DisposeAsync();
            throw;
        }
    }

    /// <inheritdoc />
    public async Task<CheckpointTransaction> LockManyAsync(
        IReadOnlyCollection<string> names, IReadOnlyList<NpgsqlBatchCommand> alongside, Func<NpgsqlDataReader, CancellationToken, Task> readAlongside, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(names);
        ArgumentNullException.ThrowIfNull(alongside);
        ArgumentNullException.ThrowIfNull(readAlongside);
        if (names.Count == 0 || names.Any(string.IsNullOrEmpty) || names.Distinct(StringComparer.Ordinal).Count() != names.Count)
        {
            throw new ArgumentException("Checkpoint names must be distinct and not empty, at least one.", nameof(names));
        }

        var conn = await dataSource.OpenConnectionAsync(ct);
        NpgsqlTransaction? tx = null;
        try
        {
            tx = await conn.BeginTransactionAsync(ct);
            var positions = new Dictionary<string, GlobalCheckpoint>(StringComparer.Ordinal);
            // As LockAsync, for several rows at once. The rows are locked in name order (ORDER BY under FOR UPDATE
            // locks as it returns), as LockPrefixAsync locks them, so two holders of overlapping sets queue behind each
            // other instead of deadlocking; a single-row holder can never be part of a cycle.
            await using (var batch = new NpgsqlBatch(conn, tx))
            {
                var array = names.ToArray();
                batch.BatchCommands.Add(new NpgsqlBatchCommand($"SET LOCAL idle_in_transaction_session_timeout = '{IdleInTransactionTimeoutMs}ms'"));
                var insert = new NpgsqlBatchCommand(
                    "INSERT INTO pf_checkpoints (name, transaction_id, global_position) SELECT n, '0'::xid8, 0 FROM unnest($1::text[]) AS n ORDER BY n ON CONFLICT (name) DO NOTHING");
                insert.Parameters.Add(new() { Value = array });
                batch.BatchCommands.Add(insert);
                var select = new NpgsqlBatchCommand("SELECT name, transaction_id::text, global_position FROM pf_checkpoints WHERE name = ANY($1) ORDER BY name FOR UPDATE");
                select.Parameters.Add(new() { Value = array });
                batch.BatchCommands.Add(select);
                foreach (var cmd in alongside)
                {
                    batch.BatchCommands.Add(cmd);
                }

                await using var r = await batch.ExecuteReaderAsync(ct);
                while (await r.ReadAsync(ct))
                {
                    positions[r.GetString(0)] = new GlobalCheckpoint(ulong.Parse(r.GetString(1), System.Globalization.CultureInfo.InvariantCulture), r.GetInt64(2));
                }

                if (positions.Count != names.Count)
                {
                    throw new InvalidOperationException($"{names.Count - positions.Count} of {names.Count} checkpoint rows vanished inside their own transaction.");
                }

                if (alongside.Count > 0)
                {
                    await r.NextResultAsync(ct);
                    await readAlongside(r, ct);
                }
            }

            return new CheckpointTransaction(conn, tx, positions);
        }
        catch
        {
            if (tx is not null)
            {
                await tx.DisposeAsync();
            }

            await conn.DisposeAsync();
            throw;
        }
    }

    /// <inheritdoc />
    public async Task<CheckpointTransaction> LockPrefixAsync(string prefix, CancellationToken ct = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(prefix);
        var conn = await dataSource.OpenConnectionAsync(ct);
        NpgsqlTransaction? tx = null;
        try
        {
            tx = await conn.BeginTransactionAsync(ct);
            await using (var cmd = new NpgsqlCommand("SELECT name FROM pf_checkpoints WHERE starts_with(name, $1) ORDER BY name FOR UPDATE", conn, tx))
            {
                cmd.Parameters.Add(new() { Value = prefix });
                await using var r = await cmd.ExecuteReaderAsync(ct);
                while (await r.ReadAsync(ct))
                {
                }
            }

            return new CheckpointTransaction(conn, tx, null, prefix, GlobalCheckpoint.Start);
        }
        catch
        {
            if (tx is not null)
            {
                await tx.DisposeAsync();
            }

            await conn.DisposeAsync();
            throw;
        }
    }

    private static async Task<IReadOnlyList<StoredEvent>> ReadAllRowsAsync(NpgsqlCommand cmd, CancellationToken ct)
    {
        var list = new List<StoredEvent>();
        await using var r = await cmd.ExecuteReaderAsync(ct);
        while (await r.ReadAsync(ct))
        {
            list.Add(ReadEvent(r));
        }

        return list;
    }

    private static StoredEvent ReadEvent(NpgsqlDataReader r) => new(
        GlobalPosition: r.GetInt64(0),
        TransactionId: ulong.Parse(r.GetString(1), System.Globalization.CultureInfo.InvariantCulture),
        StreamId: r.GetString(2),
        Version: r.GetInt64(3),
        EventId: r.GetGuid(4),
        Type: r.GetString(5),
        Seq: r.IsDBNull(6) ? null : r.GetInt64(6),
        DeviceTime: r.IsDBNull(7) ? null : new DateTimeOffset(r.GetDateTime(7), TimeSpan.Zero),
        ReceivedAt: new DateTimeOffset(r.GetDateTime(8), TimeSpan.Zero),
        ClockSuspect: r.GetBoolean(9),
        Data: r.GetString(10),
        Metadata: r.IsDBNull(11) ? null : r.GetString(11));
}
