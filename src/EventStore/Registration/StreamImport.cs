using Npgsql;
using NpgsqlTypes;

namespace PumpFleet.EventStore.Registration;

/// <summary>A stream to create with its first event; <paramref name="Line"/> is where it came from (the import file's line).</summary>
public sealed record NewStream(int Line, string StreamId, EventToAppend FirstEvent);

/// <summary>A stream of the import that already exists (in the table or archived), by the line that named it.</summary>
public sealed record ExistingStream(int Line, string StreamId);

/// <summary>
/// Result of <see cref="StreamImport.CreateStreamsAsync"/>: either every stream was created (<see cref="Created"/>),
/// or none was and <see cref="Existing"/> names the ones that already existed (at most the first 100, by line).
/// </summary>
public sealed record StreamImportResult(int Created, IReadOnlyList<ExistingStream> Existing)
{
    /// <summary>True when the streams were created.</summary>
    public bool Done => Existing.Count == 0;
}

/// <summary>
/// Creates many new streams, each with its first event, in one transaction (bulk registration of a fleet,
/// docs/operations.md "Registering a fleet"): a binary COPY into a temporary staging table, a check that none of the
/// streams exists yet (no head, none archived), then one set-based INSERT that computes each first event's hash (the chain of a new stream
/// starts from zero, Sql/003). All or nothing: a stream that exists, or one a grain creates concurrently (the
/// (stream, version) key refuses the second), leaves the table as it was. Owned here because only the event store
/// writes <c>pf_events</c>.
/// </summary>
public sealed class StreamImport(NpgsqlDataSource dataSource)
{
    /// <summary>How many existing streams a refused import reports.</summary>
    public const int ReportLimit = 100;

    /// <summary>Creates every stream of <paramref name="streams"/> at version 1, or none (see the result).</summary>
    /// <exception cref="ArgumentException">A stream id appears twice: the caller validates its input first.</exception>
    public async Task<StreamImportResult> CreateStreamsAsync(IReadOnlyCollection<NewStream> streams, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(streams);
        if (streams.Count == 0)
        {
            return new StreamImportResult(0, []);
        }

        await using var conn = await dataSource.OpenConnectionAsync(ct);
        await using var tx = await conn.BeginTransactionAsync(ct);
        await using (var create = new NpgsqlCommand("""
            CREATE TEMPORARY TABLE pf_stream_import (
                line int NOT NULL, stream_id text NOT NULL PRIMARY KEY, event_id uuid NOT NULL, event_type text NOT NULL,
                received_at timestamptz NOT NULL, data jsonb NOT NULL, metadata jsonb NULL) ON COMMIT DROP
            """, conn, tx))
        {
            await create.ExecuteNonQueryAsync(ct);
        }

        try
        {
            await using var w = await conn.BeginBinaryImportAsync(
                "COPY pf_stream_import (line, stream_id, event_id, event_type, received_at, data, metadata) FROM STDIN (FORMAT BINARY)", ct);
            foreach (var s in streams)
            {
                var e = s.FirstEvent;
                await w.StartRowAsync(ct);
                await w.WriteAsync(s.Line, NpgsqlDbType.Integer, ct);
                await w.WriteAsync(s.StreamId, NpgsqlDbType.Text, ct);
                await w.WriteAsync(e.EventId, NpgsqlDbType.Uuid, ct);
                await w.WriteAsync(e.Type, NpgsqlDbType.Text, ct);
                await w.WriteAsync(e.ReceivedAt.UtcDateTime, NpgsqlDbType.TimestampTz, ct);
                await w.WriteAsync(e.Data, NpgsqlDbType.Jsonb, ct);
                if (e.Metadata is null)
                {
                    await w.WriteNullAsync(ct);
                }
                else
                {
                    await w.WriteAsync(e.Metadata, NpgsqlDbType.Jsonb, ct);
                }
            }

            await w.CompleteAsync(ct);
        }
        catch (PostgresException e) when (e.SqlState == PostgresErrorCodes.UniqueViolation)
        {
            throw new ArgumentException("A stream id appears twice in the import.", nameof(streams), e);
        }

        var existing = new List<ExistingStream>();
        await using (var check = new NpgsqlCommand("""
            SELECT s.line, s.stream_id FROM pf_stream_import s
            WHERE EXISTS (SELECT 1 FROM pf_stream_heads h WHERE h.stream_id = s.stream_id)
               OR EXISTS (SELECT 1 FROM pf_event_archive_heads a WHERE a.stream_id = s.stream_id)
            ORDER BY s.line LIMIT $1
            """, conn, tx))
        {
            check.Parameters.Add(new() { Value = ReportLimit });
            await using var r = await check.ExecuteReaderAsync(ct);
            while (await r.ReadAsync(ct))
            {
                existing.Add(new ExistingStream(r.GetInt32(0), r.GetString(1)));
            }
        }

        if (existing.Count > 0)
        {
            await tx.RollbackAsync(ct);
            return new StreamImportResult(0, existing);
        }

        // Version 1 of each stream, its hash chained from zero (pf_event_hash with no previous hash), in file order so
        // the global log reads the registrations as the file listed them. The event table's statement trigger creates
        // the streams' heads (Sql/040); a concurrent first append of one of these streams makes it fail with a unique
        // violation on the head: the whole import is then refused, not half done.
        int created;
        await using (var insert = new NpgsqlCommand("""
            INSERT INTO pf_events (stream_id, version, event_id, event_type, seq, device_time, received_at, clock_suspect, data, metadata, hash)
            SELECT stream_id, 1, event_id, event_type, NULL, NULL, received_at, false, data, metadata,
                   pf_event_hash(NULL, stream_id, 1, event_id, event_type, NULL, NULL, received_at, false, data, metadata)
            FROM pf_stream_import ORDER BY line
            """, conn, tx))
        {
            insert.CommandTimeout = 0; // a million rows take longer than the default 30 s on a small machine
            created = await insert.ExecuteNonQueryAsync(ct);
        }

        await tx.CommitAsync(ct);
        return new StreamImportResult(created, []);
    }
}
