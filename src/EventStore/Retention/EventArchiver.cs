using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;
using Npgsql;
using PumpFleet.EventStore.Audit;
using PumpFleet.EventStore.Integrity;

namespace PumpFleet.EventStore.Retention;

/// <summary>One partition archived and dropped by <see cref="EventArchiver"/>.</summary>
public sealed record EventArchive(long Id, string Partition, long Events, long Streams, string ManifestPath, string EventsSha256);

/// <summary>
/// Archives whole months of the event log (docs/operations.md): for each partition whose month ended before the date
/// asked for, oldest first, writes its rows and its stream anchors to files, fsyncs them, re-reads and verifies them
/// (<see cref="ArchiveFile.VerifyAsync"/>), and only then has the database check the rows against the archive and detach
/// and drop the partition (Sql/041). A failure at any step leaves the partition in the table; a rerun starts the
/// partition over (the files are rewritten).
/// </summary>
public sealed partial class EventArchiver(NpgsqlDataSource dataSource, TimeProvider time)
{
    /// <summary>Archives every partition that ends at or before <paramref name="before"/> (and before now) into <paramref name="directory"/>.</summary>
    public async Task<IReadOnlyList<EventArchive>> ArchiveAsync(DateTimeOffset before, string directory, AuditActor actor, CancellationToken ct = default)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(directory);
        ArgumentNullException.ThrowIfNull(actor);
        Directory.CreateDirectory(directory);
        var now = time.GetUtcNow();
        var due = (await new EventPartitions(dataSource).ListAsync(ct))
            .Where(p => p.ArchivedAt is null && p.To <= before && p.To <= now)
            .ToList();
        var done = new List<EventArchive>();
        foreach (var p in due)
        {
            var archive = await ArchiveOneAsync(p, directory, actor, ct);
            done.Add(archive);
        }

        return done;
    }

    private async Task<EventArchive> ArchiveOneAsync(EventPartition partition, string directory, AuditActor actor, CancellationToken ct)
    {
        if (!PartitionName().IsMatch(partition.Name))
        {
            throw new InvalidOperationException($"'{partition.Name}' is not an event table partition name.");
        }

        var (events, streams, heads) = await WriteFilesAsync(partition, directory, ct);
        var manifestPath = ArchiveFile.ManifestPath(directory, partition.Name);
        var check = await ArchiveFile.VerifyAsync(manifestPath, ct);
        if (!check.Intact || check.Events != events || check.Streams != streams || check.HeadsDigest != heads)
        {
            throw new InvalidOperationException(
                $"The archive of {partition.Name} did not verify after writing ({string.Join("; ", check.Problems)}); the partition is kept.");
        }

        long id;
        await using (var cmd = dataSource.CreateCommand("SELECT pf_events_archive_partition($1, $2, $3, $4, $5, $6)"))
        {
            cmd.Parameters.Add(new() { Value = partition.Name });
            cmd.Parameters.Add(new() { Value = events });
            cmd.Parameters.Add(new() { Value = Convert.FromHexString(heads) });
            cmd.Parameters.Add(new() { Value = check.Manifest.EventsFile });
            cmd.Parameters.Add(new() { Value = check.Manifest.EventsSha256 });
            cmd.Parameters.Add(new() { Value = $"{actor.Kind}:{actor.Name}" });
            id = (long)(await cmd.ExecuteScalarAsync(ct))!;
        }

        static string N(long n) => n.ToString(CultureInfo.InvariantCulture);
        await new AuditLog(dataSource).WriteAsync(new AuditEntry(actor, "events.archive", partition.Name, 0, null, new Dictionary<string, string?>
        {
            ["archive"] = N(id),
            ["events"] = N(events),
            ["streams"] = N(streams),
            ["sha256"] = check.Manifest.EventsSha256,
            ["manifest"] = manifestPath,
        }), ct);
        return new EventArchive(id, partition.Name, events, streams, manifestPath, check.Manifest.EventsSha256);
    }

    private async Task<(long Events, long Streams, string HeadsDigest)> WriteFilesAsync(EventPartition partition, string directory, CancellationToken ct)
    {
        // Where each stream's chain starts in this partition: right after its previous archive, or at the beginning.
        var archived = new Dictionary<string, (long Version, byte[] Hash)>(StringComparer.Ordinal);
        await using (var cmd = dataSource.CreateCommand(
            "SELECT DISTINCT ON (stream_id) stream_id, version, hash FROM pf_event_archive_heads ORDER BY stream_id, version DESC"))
        await using (var r = await cmd.ExecuteReaderAsync(ct))
        {
            while (await r.ReadAsync(ct))
            {
                archived[r.GetString(0)] = (r.GetInt64(1), (byte[])r.GetValue(2));
            }
        }

        var eventsFile = partition.Name + ".events.ndjson";
        var anchorsFile = partition.Name + ".anchors.ndjson";
        var eventsTmp = Path.Combine(directory, eventsFile + ".tmp");
        var anchorsTmp = Path.Combine(directory, anchorsFile + ".tmp");
        long events = 0;
        var heads = new List<(string Stream, long Version, string Hash)>();
        await using (var eventsOut = new FileStream(eventsTmp, FileMode.Create, FileAccess.Write, FileShare.None, 1 << 16, useAsync: true))
        await using (var anchorsOut = new FileStream(anchorsTmp, FileMode.Create, FileAccess.Write, FileShare.None, 1 << 16, useAsync: true))
        {
            await using var ew = new StreamWriter(eventsOut, new UTF8Encoding(false)) { NewLine = "\n" };
            await using var aw = new StreamWriter(anchorsOut, new UTF8Encoding(false)) { NewLine = "\n" };
            await using var cmd = dataSource.CreateCommand($"""
                SELECT global_position, transaction_id::text, stream_id, version, event_id, event_type, seq, device_time, received_at,
                       clock_suspect, data::text, metadata::text, hash
                FROM {partition.Name} ORDER BY stream_id COLLATE "C", version
                """);
            await using var r = await cmd.ExecuteReaderAsync(ct);
            string? current = null;
            long first = 0, last = 0;
            byte[] startHash = [], lastHash = [];
            async Task CloseAsync()
            {
                if (current is null)
                {
                    return;
                }

                var line = new ArchivedStream(current, first, Convert.ToHexStringLower(startHash), last, Convert.ToHexStringLower(lastHash));
                await aw.WriteLineAsync(JsonSerializer.Serialize(line, ArchiveFile.Json));
                heads.Add((current, last, Convert.ToHexStringLower(lastHash)));
            }

            while (await r.ReadAsync(ct))
            {
                var stream = r.GetString(2);
                var version = r.GetInt64(3);
                var hash = (byte[])r.GetValue(12);
                if (!string.Equals(stream, current, StringComparison.Ordinal))
                {
                    await CloseAsync();
                    current = stream;
                    first = version;
                    var found = archived.TryGetValue(stream, out var a);
                    startHash = found ? a.Hash : EventHash.Genesis.ToArray();
                    var expectedFirst = found ? a.Version + 1 : 1;
                    if (version != expectedFirst)
                    {
                        throw new InvalidOperationException(
                            $"Stream {stream} starts at version {version} in {partition.Name}, not at {expectedFirst}: the month is not a prefix of the stream (archive the partition holding the earlier versions first). Nothing was dropped.");
                    }
                }

                var e = new ArchivedEvent(
                    r.GetInt64(0), r.GetString(1), stream, version, r.GetGuid(4), r.GetString(5),
                    r.IsDBNull(6) ? null : r.GetInt64(6),
                    r.IsDBNull(7) ? null : ArchiveFile.ToMicroseconds(r.GetDateTime(7)),
                    ArchiveFile.ToMicroseconds(r.GetDateTime(8)), r.GetBoolean(9), r.GetString(10), r.IsDBNull(11) ? null : r.GetString(11),
                    Convert.ToHexStringLower(hash));
                await ew.WriteLineAsync(JsonSerializer.Serialize(e, ArchiveFile.Json));
                (last, lastHash) = (version, hash);
                events++;
            }

            await CloseAsync();
            await ew.FlushAsync(ct);
            await aw.FlushAsync(ct);
            eventsOut.Flush(flushToDisk: true);
            anchorsOut.Flush(flushToDisk: true);
        }

        File.Move(eventsTmp, Path.Combine(directory, eventsFile), overwrite: true);
        File.Move(anchorsTmp, Path.Combine(directory, anchorsFile), overwrite: true);
        var digest = Convert.ToHexStringLower(ChainAnchorWriter.Digest(null, heads));
        var manifest = new ArchiveManifest(ArchiveFile.Format, partition.Name, partition.From, partition.To, events, heads.Count,
            eventsFile, await ArchiveFile.Sha256Async(Path.Combine(directory, eventsFile), ct),
            anchorsFile, await ArchiveFile.Sha256Async(Path.Combine(directory, anchorsFile), ct),
            digest, time.GetUtcNow());
        var manifestPath = ArchiveFile.ManifestPath(directory, partition.Name);
        var manifestTmp = manifestPath + ".tmp";
        await using (var m = new FileStream(manifestTmp, FileMode.Create, FileAccess.Write, FileShare.None))
        {
            await JsonSerializer.SerializeAsync(m, manifest, new JsonSerializerOptions(ArchiveFile.Json) { WriteIndented = true }, ct);
            m.Flush(flushToDisk: true);
        }

        File.Move(manifestTmp, manifestPath, overwrite: true);
        return (events, heads.Count, digest);
    }

    // Names come from pf_event_partitions, which only the migrations and pf_events_ensure_partitions write; checked
    // anyway before one is put into SQL text.
    [GeneratedRegex("^pf_events_(initial|[0-9]{4}_[0-9]{2})$", RegexOptions.CultureInvariant)]
    private static partial Regex PartitionName();
}
