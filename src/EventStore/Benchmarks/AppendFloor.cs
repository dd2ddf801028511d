using Npgsql;
using NpgsqlTypes;

namespace PumpFleet.EventStore.Benchmarks;

/// <summary>
/// The floor under the durable append (issue 15, docs/benchmarks.md "The 60 % of COPY floor"): the same groups of
/// streams' batches written in steps that each add one part of what the store's group append does, so the gap between
/// a raw COPY and the platform splits into its parts. Only for benchmarks in throwaway databases (it creates tables
/// beside the event table and writes fresh streams into <c>pf_events</c>); kept here because only the event store names
/// its tables; the platform never calls it.
/// </summary>
public static class AppendFloor
{
    /// <summary>What one step writes and how.</summary>
    public enum Step
    {
        /// <summary>One binary COPY per group into the COPY baseline's table (<see cref="RawCopyBaseline"/>: the event table's columns and its two readers' indexes).</summary>
        CopyPerGroup,

        /// <summary>One <c>INSERT … SELECT FROM unnest(…)</c> per group into the same table (a statement and array parameters instead of COPY).</summary>
        InsertCopyTable,

        /// <summary>The same INSERT into a table with all five indexes of an event-table partition (three unique).</summary>
        InsertIndexed,

        /// <summary>The same INSERT into <c>pf_events</c> itself (partitioned by month; with whichever statement triggers <see cref="SetStatementTriggersAsync"/> left on); the hash given, not computed.</summary>
        InsertEventTable,

        /// <summary>The store's set-based group append (<c>pf_append_group</c>, 043): version guards, the previous hash, the hash chain.</summary>
        AppendGroup,
    }

    private const string Columns = "stream_id, version, event_id, event_type, seq, device_time, received_at, clock_suspect, data, metadata";

    // A hash's width (SHA-256), so the rows the INSERT steps write are as wide as the chained ones.
    private static readonly byte[] GivenHash = new byte[32];

    /// <summary>Creates the steps' tables (once per database; a second call does nothing).</summary>
    public static async Task CreateTablesAsync(NpgsqlDataSource dataSource, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(dataSource);
        await RawCopyBaseline.CreateTableAsync(dataSource, ct);
        // LIKE a partitioned table copies its own (the readers') indexes; the unique ones live on each partition (040).
        await using var cmd = dataSource.CreateCommand("""
            CREATE TABLE IF NOT EXISTS pf_events_floor (LIKE pf_events INCLUDING ALL);
            CREATE UNIQUE INDEX IF NOT EXISTS pf_events_floor_stream_version ON pf_events_floor (stream_id, version);
            CREATE UNIQUE INDEX IF NOT EXISTS pf_events_floor_stream_event_id ON pf_events_floor (stream_id, event_id);
            CREATE UNIQUE INDEX IF NOT EXISTS pf_events_floor_stream_seq ON pf_events_floor (stream_id, seq) WHERE seq IS NOT NULL;
            """);
        await cmd.ExecuteNonQueryAsync(ct);
    }

    /// <summary>
    /// Fills <paramref name="months"/> month partitions ahead with <paramref name="rowsPerMonth"/> rows of other streams
    /// each (issue 15, h15y: EventStoreBench <c>--fill-months</c>), so that every month partition's indexes are real
    /// trees as in a store that keeps months of history; a fresh database's empty partitions cost a lookup without a
    /// month almost nothing.
    /// </summary>
    public static async Task FillMonthsAheadAsync(NpgsqlDataSource dataSource, int months, int rowsPerMonth, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(dataSource);
        await using (var ensure = dataSource.CreateCommand("SELECT count(*) FROM pf_events_ensure_partitions($1)"))
        {
            ensure.Parameters.Add(new() { Value = months });
            await ensure.ExecuteScalarAsync(ct);
        }

        for (var m = 1; m <= months; m++)
        {
            await using var fill = dataSource.CreateCommand("""
                INSERT INTO pf_events (stream_id, version, event_id, event_type, received_at, data)
                SELECT 'fill-' || $1 || '-' || i, 1, gen_random_uuid(), 'x', pf_month_start(now()) + make_interval(months => $1) + interval '1 day', '{}'
                FROM generate_series(1, $2) AS i
                """);
            fill.CommandTimeout = 600;
            fill.Parameters.Add(new() { Value = m });
            fill.Parameters.Add(new() { Value = rowsPerMonth });
            await fill.ExecuteNonQueryAsync(ct);
        }

        await using var analyze = dataSource.CreateCommand("ANALYZE pf_events");
        await analyze.ExecuteNonQueryAsync(ct);
    }

    /// <summary>
    /// Switches the event table's two statement triggers on or off for the steps that measure them apart: the heads and
    /// uniqueness trigger (040/043) and the log readers' NOTIFY (007/044). DDL on the whole table: only between steps,
    /// with nothing else writing, in a throwaway database.
    /// </summary>
    public static async Task SetStatementTriggersAsync(NpgsqlDataSource dataSource, bool heads, bool notify, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(dataSource);
        await using var cmd = dataSource.CreateCommand($"""
            ALTER TABLE pf_events {(heads ? "ENABLE" : "DISABLE")} TRIGGER pf_events_advance_heads;
            ALTER TABLE pf_events {(notify ? "ENABLE" : "DISABLE")} TRIGGER pf_events_notify;
            """);
        await cmd.ExecuteNonQueryAsync(ct);
    }

    /// <summary>Writes one group (each stream's batch after its expected version) in one transaction, as <paramref name="step"/> says.</summary>
    public static async Task WriteGroupAsync(NpgsqlDataSource dataSource, Step step, IReadOnlyList<StreamAppend> group, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(dataSource);
        ArgumentNullException.ThrowIfNull(group);
        switch (step)
        {
            case Step.CopyPerGroup:
                await RawCopyBaseline.CopyAsync(dataSource,
                    group.SelectMany(a => a.Events.Select((e, i) => new RawCopyRow(a.StreamId, a.ExpectedVersion + i + 1, e))), ct);
                return;
            case Step.InsertCopyTable:
                await InsertAsync(dataSource, "pf_events_copy", group, ct);
                return;
            case Step.InsertIndexed:
                await InsertAsync(dataSource, "pf_events_floor", group, ct);
                return;
            case Step.InsertEventTable:
                await InsertAsync(dataSource, "pf_events", group, ct);
                return;
            case Step.AppendGroup:
                await AppendGroupAsync(dataSource, group, ct);
                return;
            default:
                throw new ArgumentOutOfRangeException(nameof(step), step, null);
        }
    }

    private static async Task InsertAsync(NpgsqlDataSource dataSource, string table, IReadOnlyList<StreamAppend> group, CancellationToken ct)
    {
        var events = group.SelectMany(a => a.Events.Select((e, i) => (a.StreamId, Version: a.ExpectedVersion + i + 1, Event: e))).ToArray();
        // The table name is one of this class's constants, never input.
        await using var cmd = dataSource.CreateCommand($"""
            INSERT INTO {table} ({Columns}, hash)
            SELECT t.s, t.v, t.id, t.type, t.seq, t.at, t.recv, t.cs, t.data::jsonb, t.meta::jsonb, t.h
            FROM unnest($1::text[], $2::bigint[], $3::uuid[], $4::text[], $5::bigint[], $6::timestamptz[], $7::timestamptz[],
                        $8::boolean[], $9::text[], $10::text[], $11::bytea[]) AS t(s, v, id, type, seq, at, recv, cs, data, meta, h)
            """);
        cmd.Parameters.Add(new() { Value = events.Select(x => x.StreamId).ToArray() });
        cmd.Parameters.Add(new() { Value = events.Select(x => x.Version).ToArray() });
        cmd.Parameters.Add(new() { Value = events.Select(x => x.Event.EventId).ToArray() });
        cmd.Parameters.Add(new() { Value = events.Select(x => x.Event.Type).ToArray() });
        cmd.Parameters.Add(new() { Value = events.Select(x => x.Event.Seq).ToArray() });
        cmd.Parameters.Add(new() { Value = events.Select(x => x.Event.DeviceTime?.UtcDateTime).ToArray(), NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.TimestampTz });
        cmd.Parameters.Add(new() { Value = events.Select(x => x.Event.ReceivedAt.UtcDateTime).ToArray(), NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.TimestampTz });
        cmd.Parameters.Add(new() { Value = events.Select(x => x.Event.ClockSuspect).ToArray() });
        cmd.Parameters.Add(new() { Value = events.Select(x => x.Event.Data).ToArray() });
        cmd.Parameters.Add(new() { Value = events.Select(x => x.Event.Metadata).ToArray(), NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Text });
        cmd.Parameters.Add(new() { Value = events.Select(_ => GivenHash).ToArray() });
        var inserted = await cmd.ExecuteNonQueryAsync(ct);
        if (inserted != events.Length)
        {
            throw new InvalidOperationException($"{table}: inserted {inserted} of {events.Length} rows");
        }
    }

    private static async Task AppendGroupAsync(NpgsqlDataSource dataSource, IReadOnlyList<StreamAppend> group, CancellationToken ct)
    {
        var events = group.SelectMany(a => a.Events).ToArray();
        await using var cmd = dataSource.CreateCommand("""
            SELECT stream_ord, inserted FROM pf_append_group($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)
            """);
        cmd.Parameters.Add(new() { Value = group.Select(a => a.StreamId).ToArray() });
        cmd.Parameters.Add(new() { Value = group.Select(a => a.ExpectedVersion).ToArray() });
        cmd.Parameters.Add(new() { Value = group.Select(a => a.Events.Count).ToArray() });
        cmd.Parameters.Add(new() { Value = events.Select(e => e.EventId).ToArray() });
        cmd.Parameters.Add(new() { Value = events.Select(e => e.Type).ToArray() });
        cmd.Parameters.Add(new() { Value = events.Select(e => e.Seq).ToArray() });
        cmd.Parameters.Add(new() { Value = events.Select(e => e.DeviceTime?.UtcDateTime).ToArray(), NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.TimestampTz });
        cmd.Parameters.Add(new() { Value = events.Select(e => e.ReceivedAt.UtcDateTime).ToArray(), NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.TimestampTz });
        cmd.Parameters.Add(new() { Value = events.Select(e => e.ClockSuspect).ToArray() });
        cmd.Parameters.Add(new() { Value = events.Select(e => e.Data).ToArray() });
        cmd.Parameters.Add(new() { Value = events.Select(e => e.Metadata).ToArray(), NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Text });
        cmd.Parameters.Add(new() { Value = group.Select(_ => (int?)null).ToArray(), NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Integer });
        cmd.Parameters.Add(new() { Value = group.Select(_ => (string?)null).ToArray(), NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Text });
        cmd.Parameters.Add(new() { Value = group.Select(_ => (DateTime?)null).ToArray(), NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.TimestampTz });
        await using var r = await cmd.ExecuteReaderAsync(ct);
        while (await r.ReadAsync(ct))
        {
            var a = group[r.GetInt32(0) - 1];
            if (r.GetInt32(1) != a.Events.Count)
            {
                throw new InvalidOperationException($"pf_append_group: {a.StreamId} stored {r.GetInt32(1)} of {a.Events.Count} events");
            }
        }
    }
}
