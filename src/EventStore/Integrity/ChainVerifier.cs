using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Npgsql;

namespace PumpFleet.EventStore.Integrity;

/// <summary>The first broken link of a stream (or of the anchor chain, <see cref="StreamId"/> then names the anchor).</summary>
public sealed record ChainBreak(string StreamId, long Version, string Reason);

/// <summary>What <see cref="ChainVerifier.VerifyAsync"/> walked and found.</summary>
public sealed record ChainReport(long Streams, long Events, long Anchors, IReadOnlyList<ChainBreak> Breaks)
{
    /// <summary>True when every link and every anchor holds.</summary>
    public bool Intact => Breaks.Count == 0;
}

/// <summary>
/// Walks the event log stream by stream, recomputes every hash in .NET (<see cref="EventHash"/>) and reports the first
/// broken link of each stream; then checks the anchor chain and that every anchored head is still in the table.
/// </summary>
public sealed class ChainVerifier(NpgsqlDataSource dataSource)
{
    /// <summary>Verifies every stream, or only <paramref name="streamId"/>.</summary>
    public async Task<ChainReport> VerifyAsync(string? streamId = null, CancellationToken ct = default)
    {
        var breaks = new List<ChainBreak>();
        long streams = 0, events = 0;
        // A stream whose first months were archived (Sql/041) continues from the anchor recorded for its last archived
        // event; the archive files are checked on their own (ArchiveFile.VerifyAsync).
        var archived = new Dictionary<string, (long Version, byte[] Hash)>(StringComparer.Ordinal);
        await using (var cmd = dataSource.CreateCommand($"""
            SELECT DISTINCT ON (stream_id) stream_id, version, hash FROM pf_event_archive_heads
            {(streamId is null ? "" : "WHERE stream_id = $1")} ORDER BY stream_id, version DESC
            """))
        {
            if (streamId is not null)
            {
                cmd.Parameters.Add(new() { Value = streamId });
            }

            await using var r = await cmd.ExecuteReaderAsync(ct);
            while (await r.ReadAsync(ct))
            {
                archived[r.GetString(0)] = (r.GetInt64(1), (byte[])r.GetValue(2));
            }
        }

        await using (var cmd = dataSource.CreateCommand($"""
            SELECT stream_id, version, event_id, event_type, seq, device_time, received_at, clock_suspect, data::text, metadata::text, hash
            FROM pf_events {(streamId is null ? "" : "WHERE stream_id = $1")}
            ORDER BY stream_id COLLATE "C", version
            """))
        {
            if (streamId is not null)
            {
                cmd.Parameters.Add(new() { Value = streamId });
            }

            await using var r = await cmd.ExecuteReaderAsync(ct);
            string? current = null;
            var expected = 1L;
            var previous = EventHash.Genesis.ToArray();
            var broken = false;
            while (await r.ReadAsync(ct))
            {
                var stream = r.GetString(0);
                if (!string.Equals(stream, current, StringComparison.Ordinal))
                {
                    (current, expected, previous, broken) = archived.TryGetValue(stream, out var anchor)
                        ? (stream, anchor.Version + 1, anchor.Hash, false)
                        : (stream, 1L, EventHash.Genesis.ToArray(), false);
                    streams++;
                }

                events++;
                if (broken)
                {
                    continue;
                }

                var version = r.GetInt64(1);
                var stored = (byte[])r.GetValue(10);
                if (version != expected)
                {
                    breaks.Add(new(stream, expected, $"version {expected} is missing (next stored is {version})"));
                    broken = true;
                    continue;
                }

                var computed = EventHash.Compute(previous, stream, version, r.GetGuid(2), r.GetString(3),
                    r.IsDBNull(4) ? null : r.GetInt64(4),
                    r.IsDBNull(5) ? null : new DateTimeOffset(r.GetDateTime(5), TimeSpan.Zero),
                    new DateTimeOffset(r.GetDateTime(6), TimeSpan.Zero), r.GetBoolean(7), r.GetString(8), r.IsDBNull(9) ? null : r.GetString(9));
                if (!CryptographicOperations.FixedTimeEquals(computed, stored))
                {
                    breaks.Add(new(stream, version, "stored hash does not match the event's content and the previous event's hash"));
                    broken = true;
                    continue;
                }

                previous = computed;
                expected++;
            }
        }

        var anchors = await VerifyAnchorsAsync(streamId, breaks, ct);
        return new ChainReport(streams, events, anchors, breaks);
    }

    private async Task<long> VerifyAnchorsAsync(string? streamId, List<ChainBreak> breaks, CancellationToken ct)
    {
        long count = 0;
        byte[]? previous = null;
        await using (var cmd = dataSource.CreateCommand("SELECT id, digest, previous_digest, heads::text FROM pf_chain_anchors ORDER BY id"))
        await using (var r = await cmd.ExecuteReaderAsync(ct))
        {
            while (await r.ReadAsync(ct))
            {
                count++;
                var id = r.GetInt64(0);
                var digest = (byte[])r.GetValue(1);
                var storedPrevious = r.IsDBNull(2) ? null : (byte[])r.GetValue(2);
                var heads = JsonSerializer.Deserialize<JsonElement[][]>(r.GetString(3)) ?? [];
                var recomputed = ChainAnchorWriter.Digest(previous, heads.Select(h => (h[0].GetString()!, h[1].GetInt64(), h[2].GetString()!)));
                if (!Same(storedPrevious, previous) || !CryptographicOperations.FixedTimeEquals(recomputed, digest))
                {
                    breaks.Add(new($"anchor:{id}", 0, "anchor digest does not chain to the previous anchor or does not match its heads"));
                    break;
                }

                previous = digest;
            }
        }

        // Every anchored head must still be in the table with the anchored hash: a stream rewritten from some version
        // on, chain included, passes the walk above but not this.
        await using (var cmd = dataSource.CreateCommand($"""
            SELECT a.id, h->>0, (h->>1)::bigint
            FROM pf_chain_anchors a CROSS JOIN LATERAL jsonb_array_elements(a.heads) AS h
            LEFT JOIN pf_events e ON e.stream_id = h->>0 AND e.version = (h->>1)::bigint
            WHERE (e.hash IS NULL OR encode(e.hash, 'hex') <> h->>2) {(streamId is null ? "" : "AND h->>0 = $1")}
              -- an anchored head archived since is no longer in the table: the stream's chain now starts at the archive's recorded
              -- anchor, and the archive's own files (ArchiveFile.VerifyAsync) hold and check the events up to it
              AND NOT EXISTS (SELECT 1 FROM pf_event_archive_heads x WHERE x.stream_id = h->>0 AND x.version >= (h->>1)::bigint)
            ORDER BY h->>0, (h->>1)::bigint
            """))
        {
            if (streamId is not null)
            {
                cmd.Parameters.Add(new() { Value = streamId });
            }

            await using var r = await cmd.ExecuteReaderAsync(ct);
            var seen = new HashSet<string>(StringComparer.Ordinal);
            while (await r.ReadAsync(ct))
            {
                var stream = r.GetString(1);
                if (seen.Add(stream))
                {
                    breaks.Add(new(stream, r.GetInt64(2), $"differs from the head anchored by anchor {r.GetInt64(0)}"));
                }
            }
        }

        return count;
    }

    private static bool Same(byte[]? a, byte[]? b) => a is null ? b is null : b is not null && a.AsSpan().SequenceEqual(b);

    /// <summary>Writes a report for people: one line per break, then a summary.</summary>
    public static void Write(ChainReport report, TextWriter output)
    {
        ArgumentNullException.ThrowIfNull(report);
        ArgumentNullException.ThrowIfNull(output);
        foreach (var b in report.Breaks)
        {
            output.WriteLine(b.Version > 0 ? $"BROKEN {b.StreamId} at version {b.Version}: {b.Reason}" : $"BROKEN {b.StreamId}: {b.Reason}");
        }

        var sb = new StringBuilder();
        sb.Append(report.Intact ? "Intact: " : $"{report.Breaks.Count} broken: ");
        sb.Append(System.Globalization.CultureInfo.InvariantCulture, $"{report.Streams} streams, {report.Events} events, {report.Anchors} anchors checked.");
        output.WriteLine(sb.ToString());
    }
}
