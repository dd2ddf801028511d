using System.Data;
using System.Diagnostics.Metrics;
using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Npgsql;

namespace PumpFleet.EventStore.Integrity;

/// <summary>An anchor of the event chains (a row of <c>pf_chain_anchors</c>).</summary>
public sealed record ChainAnchor(long Id, DateTimeOffset AnchoredAt, long Events, long Streams, string Digest);

/// <summary>
/// Writes chain anchors: the heads of the streams that moved since the previous anchor (gap-safe, in the global
/// readers' order), hashed together with the previous anchor's digest. One writer at a time (advisory lock), so
/// several silos may run the job.
/// </summary>
public sealed class ChainAnchorWriter
{
    // "PFANCHOR" as a 64-bit advisory lock key.
    private const long LockKey = 0x5046_414E_4348_4F52;

    // The events after the previous anchor, below the horizon: below the snapshot's xmin every transaction has finished,
    // so nothing can later appear behind the anchor. Each log partition's range of the partition index (since migration
    // 047 the log's only index in its reading order): a window of a few minutes reads only its own rows, one of the whole
    // log (the first anchor) is a sequential scan as before.
    private static readonly string Window = $"""
        {Log.LogOrder.AnyPartition} AND (transaction_id, global_position) > ($1::text::xid8, $2)
          AND transaction_id < pg_snapshot_xmin(pg_current_snapshot())
        """;

    private readonly NpgsqlDataSource _dataSource;
    private ChainAnchor? _latest;

    /// <summary>Creates the writer and its metrics (meter <see cref="EventStoreInstruments.MeterName"/>).</summary>
    public ChainAnchorWriter(NpgsqlDataSource dataSource, IMeterFactory meterFactory)
    {
        ArgumentNullException.ThrowIfNull(meterFactory);
        _dataSource = dataSource;
        var meter = meterFactory.Create(EventStoreInstruments.MeterName);
        // The digest travels as a label so that Prometheus keeps an independent copy of every anchor.
        meter.CreateObservableGauge("pumpfleet.chain.anchor.id", () => Latest is { } a
            ? [new Measurement<long>(a.Id, new KeyValuePair<string, object?>("digest", a.Digest))] : Array.Empty<Measurement<long>>(),
            "{anchor}", "Id of the newest event-chain anchor, labelled with its digest (hex SHA-256).");
        meter.CreateObservableGauge("pumpfleet.chain.anchor.time", () => Latest is { } a
            ? [new Measurement<double>(a.AnchoredAt.ToUnixTimeMilliseconds() / 1000.0)] : Array.Empty<Measurement<double>>(),
            "s", "When the newest event-chain anchor was written (Unix time).");
    }

    /// <summary>The newest anchor seen by this process (after <see cref="AnchorAsync"/> or <see cref="RefreshAsync"/>).</summary>
    public ChainAnchor? Latest
    {
        get => Volatile.Read(ref _latest);
        private set => Volatile.Write(ref _latest, value);
    }

    /// <summary>sha256(previous || for each head: stream \n version \n hex \n), the digest of one anchor.</summary>
    public static byte[] Digest(byte[]? previous, IEnumerable<(string Stream, long Version, string Hash)> heads)
    {
        ArgumentNullException.ThrowIfNull(heads);
        using var h = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        h.AppendData(previous ?? []);
        foreach (var (stream, version, hash) in heads)
        {
            h.AppendData(Encoding.UTF8.GetBytes(string.Create(CultureInfo.InvariantCulture, $"{stream}\n{version}\n{hash}\n")));
        }

        return h.GetHashAndReset();
    }

    /// <summary>Reads the newest anchor into <see cref="Latest"/>.</summary>
    public async Task<ChainAnchor?> RefreshAsync(CancellationToken ct = default)
    {
        await using var cmd = _dataSource.CreateCommand(
            "SELECT id, anchored_at, events, jsonb_array_length(heads), encode(digest, 'hex') FROM pf_chain_anchors ORDER BY id DESC LIMIT 1");
        await using var r = await cmd.ExecuteReaderAsync(ct);
        if (await r.ReadAsync(ct))
        {
            Latest = new ChainAnchor(r.GetInt64(0), r.GetFieldValue<DateTimeOffset>(1), r.GetInt64(2), r.GetInt32(3), r.GetString(4));
        }

        return Latest;
    }

    /// <summary>Writes an anchor over the events committed since the previous one; null when there are none (or another process holds the lock).</summary>
    public async Task<ChainAnchor?> AnchorAsync(CancellationToken ct = default)
    {
        await using var conn = await _dataSource.OpenConnectionAsync(ct);
        // One snapshot for the horizon, the heads and the previous anchor.
        await using var tx = await conn.BeginTransactionAsync(IsolationLevel.RepeatableRead, ct);
        await using (var lockCmd = new NpgsqlCommand($"SELECT pg_try_advisory_xact_lock({LockKey})", conn, tx))
        {
            if (!(bool)(await lockCmd.ExecuteScalarAsync(ct))!)
            {
                return null;
            }
        }

        byte[]? previous = null;
        string afterTx = "0";
        long afterPosition = 0;
        await using (var cmd = new NpgsqlCommand(
            "SELECT digest, through_tx::text, through_position FROM pf_chain_anchors ORDER BY id DESC LIMIT 1", conn, tx))
        await using (var r = await cmd.ExecuteReaderAsync(ct))
        {
            if (await r.ReadAsync(ct))
            {
                (previous, afterTx, afterPosition) = ((byte[])r.GetValue(0), r.GetString(1), r.GetInt64(2));
            }
        }

        string throughTx;
        long throughPosition, events;
        // "AS tx": a bare ORDER BY name means the output column first, so an output column named transaction_id (the
        // text) would order by the text, in which 9999 comes after 10000 (the statement before migration 047 did).
        await using (var cmd = new NpgsqlCommand($"""
            SELECT transaction_id::text AS tx, global_position, count(*) OVER () FROM pf_events WHERE {Window}
            ORDER BY transaction_id DESC, global_position DESC LIMIT 1
            """, conn, tx))
        {
            cmd.Parameters.Add(new() { Value = afterTx });
            cmd.Parameters.Add(new() { Value = afterPosition });
            await using var r = await cmd.ExecuteReaderAsync(ct);
            if (!await r.ReadAsync(ct))
            {
                return null;
            }

            (throughTx, throughPosition, events) = (r.GetString(0), r.GetInt64(1), r.GetInt64(2));
        }

        var heads = new List<(string Stream, long Version, string Hash)>();
        await using (var cmd = new NpgsqlCommand($"""
            SELECT DISTINCT ON (stream_id COLLATE "C") stream_id, version, encode(hash, 'hex') FROM pf_events
            WHERE {Window} AND (transaction_id, global_position) <= ($3::text::xid8, $4)
            ORDER BY stream_id COLLATE "C", version DESC
            """, conn, tx))
        {
            cmd.Parameters.Add(new() { Value = afterTx });
            cmd.Parameters.Add(new() { Value = afterPosition });
            cmd.Parameters.Add(new() { Value = throughTx });
            cmd.Parameters.Add(new() { Value = throughPosition });
            await using var r = await cmd.ExecuteReaderAsync(ct);
            while (await r.ReadAsync(ct))
            {
                heads.Add((r.GetString(0), r.GetInt64(1), r.GetString(2)));
            }
        }

        var digest = Digest(previous, heads);
        var headsJson = JsonSerializer.Serialize(heads.Select(h => new object[] { h.Stream, h.Version, h.Hash }));
        ChainAnchor anchor;
        await using (var cmd = new NpgsqlCommand("""
            INSERT INTO pf_chain_anchors (through_tx, through_position, events, digest, previous_digest, heads)
            VALUES ($1::text::xid8, $2, $3, $4, $5, $6::jsonb) RETURNING id, anchored_at
            """, conn, tx))
        {
            cmd.Parameters.Add(new() { Value = throughTx });
            cmd.Parameters.Add(new() { Value = throughPosition });
            cmd.Parameters.Add(new() { Value = events });
            cmd.Parameters.Add(new() { Value = digest });
            cmd.Parameters.Add(new() { Value = (object?)previous ?? DBNull.Value, NpgsqlDbType = NpgsqlTypes.NpgsqlDbType.Bytea });
            cmd.Parameters.Add(new() { Value = headsJson });
            await using var r = await cmd.ExecuteReaderAsync(ct);
            await r.ReadAsync(ct);
            anchor = new ChainAnchor(r.GetInt64(0), r.GetFieldValue<DateTimeOffset>(1), events, heads.Count, Convert.ToHexStringLower(digest));
        }

        await tx.CommitAsync(ct);
        Latest = anchor;
        return anchor;
    }
}
