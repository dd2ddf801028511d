using System.Text.Json;
using PumpFleet.Contracts.Events;
using PumpFleet.Contracts.Hub;
using PumpFleet.Contracts.Json;
using PumpFleet.EventStore;
using PumpFleet.EventStore.Registration;

namespace PumpFleet.Grains.Pumps;

/// <summary>One line of a pump import that cannot be registered, and why.</summary>
public sealed record PumpImportError(int Line, string Message)
{
    /// <inheritdoc />
    public override string ToString() => $"line {Line}: {Message}";
}

/// <summary>Outcome of <see cref="PumpImport.ImportAsync"/>: the pumps registered, or (none registered) every error found.</summary>
public sealed record PumpImportOutcome(int Registered, IReadOnlyList<PumpImportError> Errors)
{
    /// <summary>True when the whole file was registered.</summary>
    public bool Done => Errors.Count == 0;
}

/// <summary>
/// Bulk registration of pumps (docs/operations.md "Registering a fleet"): a CSV of <c>serial,hub_id</c> lines, each
/// pump new to the platform, becomes one <c>pump.paired</c> event per pump (the same event <c>hubs pair</c> writes
/// through the grain), written in one transaction by the event store's <see cref="StreamImport"/>. Every line is
/// validated first (ids, duplicates, the hub provisioned and not revoked, the pump not yet known); any error refuses
/// the whole file, naming its lines, so a fleet is never half registered. The grains are not activated: a pump's first
/// message loads the pairing from its stream like any other.
/// </summary>
public sealed class PumpImport(StreamImport streams, TimeProvider time)
{
    /// <summary>The first line of the file.</summary>
    public const string Header = "serial,hub_id";

    /// <summary>How many errors an import reports at most (the file is refused at the first anyway).</summary>
    public const int ErrorLimit = ImportCsv.ErrorLimit;

    /// <summary>A line of the file that parsed.</summary>
    public sealed record Row(int Line, string Serial, string HubId);

    /// <summary>
    /// Reads and validates the file's lines: the header, two fields per line, valid ids, no serial twice. Blank lines
    /// are skipped; fields are trimmed.
    /// </summary>
    public static async Task<(List<Row> Rows, List<PumpImportError> Errors)> ParseAsync(TextReader csv, CancellationToken ct = default)
    {
        var rows = new List<Row>();
        var firstLine = new Dictionary<string, int>(StringComparer.Ordinal);
        var errors = await ImportCsv.ReadAsync(
            csv,
            header => header.Equals(Header, StringComparison.OrdinalIgnoreCase),
            text => $"the first line must be the header '{Header}', not '{text}'",
            $"the file is empty (expected the header '{Header}' and one line per pump)",
            (line, fields) =>
            {
                if (fields.Length != 2)
                {
                    return $"expected 2 fields ({Header}), found {fields.Length}: '{ImportCsv.Shorten(string.Join(',', fields))}'";
                }

                var (serial, hubId) = (fields[0].Trim(), fields[1].Trim());
                if (!HubTopics.IsValidId(serial))
                {
                    return ImportCsv.InvalidId("serial", serial);
                }

                if (!HubTopics.IsValidId(hubId))
                {
                    return ImportCsv.InvalidId("hub id", hubId);
                }

                if (!firstLine.TryAdd(serial, line))
                {
                    return $"pump {serial} is listed twice (first on line {firstLine[serial]})";
                }

                rows.Add(new Row(line, serial, hubId));
                return null;
            },
            ct);
        return (rows, [.. errors.Select(e => new PumpImportError(e.Line, e.Message))]);
    }

    /// <summary>
    /// Validates and registers the pumps of <paramref name="csv"/>, all or none. <paramref name="activeHubs"/> returns
    /// which of the given hub ids are provisioned and not revoked (the gateway's registry).
    /// </summary>
    public async Task<PumpImportOutcome> ImportAsync(
        TextReader csv, string by, Func<IReadOnlyCollection<string>, CancellationToken, Task<IReadOnlySet<string>>> activeHubs,
        CancellationToken ct = default)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(by);
        ArgumentNullException.ThrowIfNull(activeHubs);
        var (rows, errors) = await ParseAsync(csv, ct);
        if (errors.Count > 0)
        {
            return new(0, errors);
        }

        var hubs = rows.Select(r => r.HubId).Distinct(StringComparer.Ordinal).ToList();
        var active = await activeHubs(hubs, ct);
        errors.AddRange(rows.Where(r => !active.Contains(r.HubId)).Take(ErrorLimit)
            .Select(r => new PumpImportError(r.Line, $"hub {r.HubId} is not provisioned (or is revoked): provision it first ('hubs provision' or 'hubs import')")));
        if (errors.Count > 0)
        {
            return new(0, errors);
        }

        // One receive time for the whole import, to the microsecond the store keeps (a replay folds what is stored).
        var now = time.GetUtcNow();
        now = now.AddTicks(-(now.UtcTicks % 10));
        var type = EventTypes.NameOf(typeof(PumpPaired));
        var result = await streams.CreateStreamsAsync([.. rows.Select(r => new NewStream(r.Line, r.Serial, new EventToAppend(
            Guid.NewGuid(), type, EventJson.Serialize(new PumpPaired { At = now, HubId = r.HubId, By = by }), null, null, now,
            Metadata: JsonSerializer.Serialize(new ImportMetadata(r.HubId), EventJson.Options))))], ct);
        return result.Done
            ? new(result.Created, [])
            : new(0, [.. result.Existing.Select(e => new PumpImportError(e.Line,
                $"pump {e.StreamId} is already registered (it has events); re-pair it with 'hubs pair' instead"))]);
    }

    // The same shape as the grain's event metadata, so a reader finds the hub of a pairing in either.
    private sealed record ImportMetadata(string HubId);
}
