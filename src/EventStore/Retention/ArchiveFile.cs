using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;
using PumpFleet.EventStore.Integrity;

namespace PumpFleet.EventStore.Retention;

/// <summary>
/// The manifest of an archived partition (<c>{partition}.manifest.json</c>), next to its events file
/// (<c>{partition}.events.ndjson</c>: one JSON object per event, in stream then version order) and its anchors file
/// (<c>{partition}.anchors.ndjson</c>: per stream the first version, the hash it chains from, the last version and its hash).
/// </summary>
public sealed record ArchiveManifest(
    int Format,
    string Partition,
    DateTimeOffset? From,
    DateTimeOffset To,
    long Events,
    long Streams,
    string EventsFile,
    string EventsSha256,
    string AnchorsFile,
    string AnchorsSha256,
    string HeadsDigest,
    DateTimeOffset WrittenAt);

/// <summary>One event as the archive holds it: every column, times as integer microseconds since 1970 (UTC), data and metadata as jsonb's text.</summary>
public sealed record ArchivedEvent(
    [property: JsonPropertyName("position")] long GlobalPosition,
    [property: JsonPropertyName("tx")] string TransactionId,
    [property: JsonPropertyName("stream")] string StreamId,
    [property: JsonPropertyName("version")] long Version,
    [property: JsonPropertyName("eventId")] Guid EventId,
    [property: JsonPropertyName("type")] string Type,
    [property: JsonPropertyName("seq")] long? Seq,
    [property: JsonPropertyName("deviceTimeUs")] long? DeviceTimeUs,
    [property: JsonPropertyName("receivedAtUs")] long ReceivedAtUs,
    [property: JsonPropertyName("clockSuspect")] bool ClockSuspect,
    [property: JsonPropertyName("data")] string Data,
    [property: JsonPropertyName("metadata")] string? Metadata,
    [property: JsonPropertyName("hash")] string Hash);

/// <summary>Per stream of an archive: the versions it holds and the chain links at both ends.</summary>
public sealed record ArchivedStream(
    [property: JsonPropertyName("stream")] string StreamId,
    [property: JsonPropertyName("firstVersion")] long FirstVersion,
    [property: JsonPropertyName("previousHash")] string PreviousHash,
    [property: JsonPropertyName("lastVersion")] long LastVersion,
    [property: JsonPropertyName("lastHash")] string LastHash);

/// <summary>What <see cref="ArchiveFile.VerifyAsync"/> found.</summary>
public sealed record ArchiveCheck(ArchiveManifest Manifest, long Events, long Streams, string HeadsDigest, IReadOnlyList<string> Problems)
{
    /// <summary>True when the files match their manifest and every chain in them recomputes.</summary>
    public bool Intact => Problems.Count == 0;
}

/// <summary>Reading and checking an archive on disk, independent of the database (it needs only the three files).</summary>
public static class ArchiveFile
{
    /// <summary>The archive format this code writes and reads.</summary>
    public const int Format = 1;

    internal static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web) { WriteIndented = false };

    /// <summary>The manifest's path for <paramref name="partition"/> in <paramref name="directory"/>.</summary>
    public static string ManifestPath(string directory, string partition) => Path.Combine(directory, partition + ".manifest.json");

    internal static long ToMicroseconds(DateTime utc) => (utc.Ticks - DateTime.UnixEpoch.Ticks) / 10;

    internal static DateTimeOffset FromMicroseconds(long us) => DateTimeOffset.UnixEpoch.AddTicks(us * 10);

    /// <summary>
    /// Re-reads an archive: the files' SHA-256 against the manifest, every event's hash recomputed from its content and
    /// the previous one (each stream from the hash its anchor line names), versions contiguous, counts and the heads
    /// digest against the manifest.
    /// </summary>
    public static async Task<ArchiveCheck> VerifyAsync(string manifestPath, CancellationToken ct = default)
    {
        var directory = Path.GetDirectoryName(Path.GetFullPath(manifestPath))!;
        var manifest = JsonSerializer.Deserialize<ArchiveManifest>(await File.ReadAllTextAsync(manifestPath, ct), Json)
            ?? throw new InvalidDataException($"{manifestPath}: empty manifest");
        var problems = new List<string>();
        if (manifest.Format != Format)
        {
            problems.Add($"format {manifest.Format} is not {Format}");
            return new ArchiveCheck(manifest, 0, 0, "", problems);
        }

        var eventsPath = Path.Combine(directory, manifest.EventsFile);
        var anchorsPath = Path.Combine(directory, manifest.AnchorsFile);
        if (!string.Equals(await Sha256Async(eventsPath, ct), manifest.EventsSha256, StringComparison.OrdinalIgnoreCase))
        {
            problems.Add($"{manifest.EventsFile}: SHA-256 differs from the manifest");
        }

        if (!string.Equals(await Sha256Async(anchorsPath, ct), manifest.AnchorsSha256, StringComparison.OrdinalIgnoreCase))
        {
            problems.Add($"{manifest.AnchorsFile}: SHA-256 differs from the manifest");
        }

        var anchors = new Dictionary<string, ArchivedStream>(StringComparer.Ordinal);
        foreach (var line in await File.ReadAllLinesAsync(anchorsPath, Encoding.UTF8, ct))
        {
            if (line.Length > 0 && JsonSerializer.Deserialize<ArchivedStream>(line, Json) is { } a)
            {
                anchors[a.StreamId] = a;
            }
        }

        long events = 0;
        var heads = new List<(string Stream, long Version, string Hash)>();
        string? current = null;
        byte[] previous = [];
        long expected = 0;
        var broken = false;
        void CloseStream()
        {
            if (current is null)
            {
                return;
            }

            var a = anchors.GetValueOrDefault(current);
            if (!broken && (a is null || a.LastVersion != expected - 1 || !string.Equals(a.LastHash, Convert.ToHexStringLower(previous), StringComparison.Ordinal)))
            {
                problems.Add($"{current}: the events end at version {expected - 1}, not at the anchor's last version and hash");
            }

            heads.Add((current, expected - 1, Convert.ToHexStringLower(previous)));
        }

        using (var reader = new StreamReader(eventsPath, Encoding.UTF8))
        {
            while (await reader.ReadLineAsync(ct) is { } line)
            {
                if (line.Length == 0)
                {
                    continue;
                }

                var e = JsonSerializer.Deserialize<ArchivedEvent>(line, Json) ?? throw new InvalidDataException($"{eventsPath}: empty line object");
                events++;
                if (!string.Equals(e.StreamId, current, StringComparison.Ordinal))
                {
                    if (current is not null && string.CompareOrdinal(e.StreamId, current) < 0)
                    {
                        problems.Add($"{e.StreamId}: out of stream order");
                    }

                    CloseStream();
                    current = e.StreamId;
                    broken = false;
                    if (anchors.GetValueOrDefault(e.StreamId) is { } a)
                    {
                        (expected, previous) = (a.FirstVersion, Convert.FromHexString(a.PreviousHash));
                    }
                    else
                    {
                        problems.Add($"{e.StreamId}: no anchor line");
                        (expected, previous, broken) = (e.Version, EventHash.Genesis.ToArray(), true);
                    }
                }

                if (broken)
                {
                    expected = e.Version + 1;
                    continue;
                }

                var computed = EventHash.Compute(previous, e.StreamId, e.Version, e.EventId, e.Type, e.Seq,
                    e.DeviceTimeUs is { } d ? FromMicroseconds(d) : null, FromMicroseconds(e.ReceivedAtUs), e.ClockSuspect, e.Data, e.Metadata);
                if (e.Version != expected)
                {
                    problems.Add($"{e.StreamId}: version {expected} missing (next is {e.Version})");
                    broken = true;
                }
                else if (!string.Equals(Convert.ToHexStringLower(computed), e.Hash, StringComparison.OrdinalIgnoreCase))
                {
                    problems.Add($"{e.StreamId}: version {e.Version}'s hash does not match its content and the previous hash");
                    broken = true;
                }

                previous = computed;
                expected = e.Version + 1;
            }
        }

        CloseStream();
        var digest = Convert.ToHexStringLower(ChainAnchorWriter.Digest(null, heads));
        if (events != manifest.Events)
        {
            problems.Add($"{events} events in the file, the manifest says {manifest.Events}");
        }

        if (heads.Count != manifest.Streams || anchors.Count != manifest.Streams)
        {
            problems.Add($"{heads.Count} streams in the events file and {anchors.Count} anchor lines, the manifest says {manifest.Streams}");
        }

        if (!string.Equals(digest, manifest.HeadsDigest, StringComparison.OrdinalIgnoreCase))
        {
            problems.Add("the heads digest of the events differs from the manifest");
        }

        return new ArchiveCheck(manifest, events, heads.Count, digest, problems);
    }

    internal static async Task<string> Sha256Async(string path, CancellationToken ct)
    {
        await using var f = File.OpenRead(path);
        return Convert.ToHexStringLower(await SHA256.HashDataAsync(f, ct));
    }

    /// <summary>Writes a report for people: one line per problem, then a summary.</summary>
    public static void Write(ArchiveCheck check, TextWriter output)
    {
        ArgumentNullException.ThrowIfNull(check);
        ArgumentNullException.ThrowIfNull(output);
        foreach (var p in check.Problems)
        {
            output.WriteLine($"BROKEN {p}");
        }

        output.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"{(check.Intact ? "Intact" : "Broken")}: {check.Manifest.Partition}, {check.Events} events, {check.Streams} streams, heads digest {check.HeadsDigest}."));
    }
}
