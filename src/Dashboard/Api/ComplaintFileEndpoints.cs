using System.Globalization;
using System.Text;
using System.Text.Json;
using PumpFleet.Contracts.Events;
using PumpFleet.Contracts.Json;
using PumpFleet.Dashboard.Auth;
using PumpFleet.EventStore;
using PumpFleet.EventStore.Audit;
using PumpFleet.ReadModels;

namespace PumpFleet.Dashboard.Api;

/// <summary>
/// <c>GET /api/pumps/{serial}/complaint-file</c>: everything the platform holds about one pump in a period, for a
/// manufacturer's complaint investigation (docs/api.md): every stored event, the anomalies, the acknowledgements and
/// resolutions, and the audit entries about the pump and its anomalies. Analyst or admin; the export is itself
/// audited (before the first byte is sent). Streamed: events are read from the store and written as they come,
/// the audit trail page by page; only the pump's anomaly list is held in memory.
/// </summary>
internal static class ComplaintFileEndpoints
{
    private static readonly string[] Formats = ["json", "csv"];
    private const int AuditPage = 500;
    private const int FlushEvery = 256;

    public static RouteGroupBuilder MapComplaintFileEndpoints(this RouteGroupBuilder api)
    {
        api.MapGet("/pumps/{serial}/complaint-file", GetAsync).RequireAuthorization(Roles.CanTriage).Audited("pump.complaint-file")
            .WithName("GetComplaintFile")
            .WithSummary("One pump's complaint file: every event, anomaly, acknowledgement and audit entry in [from, to], as JSON or CSV (analyst)")
            .Produces(StatusCodes.Status200OK, contentType: "application/json").Produces(StatusCodes.Status200OK, contentType: "text/csv")
            .ProducesValidationProblem().ProducesProblem(StatusCodes.Status404NotFound);
        return api;
    }

    private static async Task<IResult> GetAsync(string serial, IEventReader store, CancellationToken ct,
        string? from = null, string? to = null, string? format = null)
    {
        var p = new QueryParameters();
        if (!QueryParameters.IsIdentifier(serial))
        {
            p.Error("serial", "must match ^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$ (protocol.md §1).");
        }

        var f = p.Time("from", from);
        var t = p.Time("to", to);
        var fmt = p.OneOf("format", format, Formats) ?? "json";
        if (f is { } ff && t is { } tt && ff > tt)
        {
            p.Error("from", "must not be after 'to'.");
        }

        if (p.HasErrors)
        {
            return p.Problem();
        }

        if ((await store.ReadStreamBySeqAsync(serial, 0, 1, ct)).Count == 0)
        {
            return TypedResults.Problem(title: "Unknown pump", detail: $"No events are stored for pump '{serial}'.", statusCode: StatusCodes.Status404NotFound);
        }

        return new ComplaintFile(serial, f, t, fmt);
    }

    /// <summary>The streamed body; runs after the audit filter has recorded the export.</summary>
    private sealed class ComplaintFile(string serial, DateTimeOffset? from, DateTimeOffset? to, string format) : IResult
    {
        public async Task ExecuteAsync(HttpContext http)
        {
            var ct = http.RequestAborted;
            var services = http.RequestServices;
            var store = services.GetRequiredService<IEventReader>();
            var queries = services.GetRequiredService<IReadModelQueries>();
            var audit = services.GetRequiredService<AuditLog>();
            var generatedAt = services.GetRequiredService<TimeProvider>().GetUtcNow();
            var anomalies = (await queries.ListAnomaliesAsync(null, null, null, serial, int.MaxValue, ct))
                .Where(a => InPeriod(a))
                .OrderBy(a => a.DetectedAt).ThenBy(a => a.Id, StringComparer.Ordinal).ToList();
            // Audit entries name a pump by its serial and an anomaly by its id (the audit filter's target).
            string[] targets = [serial, .. anomalies.Select(a => a.Id)];
            var stamp = string.Create(CultureInfo.InvariantCulture, $"{from:yyyyMMddTHHmmssZ}-{to:yyyyMMddTHHmmssZ}").Trim('-');
            http.Response.Headers.ContentDisposition = $"attachment; filename=\"complaint-{serial}{(stamp.Length > 0 ? "-" + stamp : "")}.{format}\"";
            http.Response.Headers.CacheControl = "no-store";
            if (format == "csv")
            {
                http.Response.ContentType = "text/csv; charset=utf-8; header=present";
                await WriteCsvAsync(http.Response.Body, store, audit, anomalies, targets, ct);
            }
            else
            {
                http.Response.ContentType = "application/json; charset=utf-8";
                await WriteJsonAsync(http.Response.Body, store, audit, anomalies, targets, http.User.Identity?.Name, generatedAt, ct);
            }
        }

        // An anomaly belongs to the period when anything happened to it in it, or it was open across it.
        private bool InPeriod(AnomalyItem a)
        {
            var end = a.ResolvedAt ?? DateTimeOffset.MaxValue;
            return (to is not { } t || a.DetectedAt <= t) && (from is not { } f || end >= f);
        }

        private bool InPeriod(DateTimeOffset at) => (from is not { } f || at >= f) && (to is not { } t || at <= t);

        // Event time as the as-of fold uses it: the device's clock unless suspect (then the receive time), a platform event's own "at".
        private static DateTimeOffset EventTime(StoredEvent e, PumpEvent payload) =>
            e.Seq is null ? payload.At : e.ClockSuspect ? e.ReceivedAt : e.DeviceTime ?? payload.At;

        private async IAsyncEnumerable<(StoredEvent Stored, PumpEvent Event, DateTimeOffset At)> EventsAsync(
            IEventReader store, [System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken ct)
        {
            // The upper bound is filtered in SQL (the as-of read); identity events it adds are filtered here like the rest.
            var source = to is { } t ? store.ReadStreamAsOfAsync(serial, 0, t, ct) : store.ReadStreamAsync(serial, 0, ct);
            await foreach (var e in source.WithCancellation(ct))
            {
                var payload = EventJson.Deserialize(e.Type, e.Data);
                var at = EventTime(e, payload);
                if (InPeriod(at))
                {
                    yield return (e, payload, at);
                }
            }
        }

        private async Task WriteJsonAsync(Stream body, IEventReader store, AuditLog audit, IReadOnlyList<AnomalyItem> anomalies, string[] targets,
            string? user, DateTimeOffset generatedAt, CancellationToken ct)
        {
            await using var w = new Utf8JsonWriter(body, new JsonWriterOptions { Indented = false });
            w.WriteStartObject();
            w.WriteString("serial", serial);
            WriteTime(w, "from", from);
            WriteTime(w, "to", to);
            w.WriteString("generatedAt", generatedAt.ToUniversalTime());
            w.WriteString("generatedBy", user);
            w.WriteStartArray("events");
            var n = 0;
            await foreach (var (e, _, at) in EventsAsync(store, ct))
            {
                w.WriteStartObject();
                w.WriteNumber("version", e.Version);
                if (e.Seq is { } seq)
                {
                    w.WriteNumber("seq", seq);
                }

                w.WriteString("type", e.Type);
                w.WriteString("at", at.ToUniversalTime());
                w.WriteString("receivedAt", e.ReceivedAt.ToUniversalTime());
                w.WriteBoolean("clockSuspect", e.ClockSuspect);
                w.WritePropertyName("data");
                w.WriteRawValue(e.Data, skipInputValidation: false);
                w.WriteEndObject();
                if (++n % FlushEvery == 0)
                {
                    await w.FlushAsync(ct);
                }
            }

            w.WriteEndArray();
            w.WriteStartArray("anomalies");
            foreach (var a in anomalies)
            {
                // Through an element: serialising into the writer would flush it synchronously, which Kestrel refuses.
                JsonSerializer.SerializeToElement(a, EventJson.Options).WriteTo(w);
            }

            w.WriteEndArray();
            // A second pass over the stream: acknowledgements and resolutions in order, with who, when and the note.
            w.WriteStartArray("acknowledgements");
            await foreach (var (e, payload, at) in EventsAsync(store, ct))
            {
                if (Acknowledgement(payload) is { } x)
                {
                    w.WriteStartObject();
                    w.WriteString("anomalyId", x.AnomalyId);
                    w.WriteString("action", x.Action);
                    w.WriteString("by", x.By);
                    w.WriteString("at", at.ToUniversalTime());
                    w.WriteString("receivedAt", e.ReceivedAt.ToUniversalTime());
                    w.WriteString("note", x.Note);
                    w.WriteBoolean("automatic", x.Automatic);
                    w.WriteEndObject();
                }
            }

            w.WriteEndArray();
            await w.FlushAsync(ct);
            w.WriteStartArray("audit");
            await foreach (var r in AuditAsync(audit, targets, ct))
            {
                JsonSerializer.SerializeToElement(r, EventJson.Options).WriteTo(w);
                if (++n % FlushEvery == 0)
                {
                    await w.FlushAsync(ct);
                }
            }

            w.WriteEndArray();
            w.WriteEndObject();
            await w.FlushAsync(ct);
        }

        private async Task WriteCsvAsync(Stream body, IEventReader store, AuditLog audit, IReadOnlyList<AnomalyItem> anomalies, string[] targets, CancellationToken ct)
        {
            await using var w = new StreamWriter(body, new UTF8Encoding(encoderShouldEmitUTF8Identifier: false), 16 * 1024, leaveOpen: true);
            await w.WriteAsync(Csv.Line("section", "at", "receivedAt", "version", "seq", "type", "anomalyId", "kind", "severity", "status",
                "actor", "target", "outcome", "text", "detail"));
            var n = 0;
            await foreach (var (e, payload, at) in EventsAsync(store, ct))
            {
                var anomalyId = payload switch
                {
                    AnomalyDetected d => d.AnomalyId,
                    AnomalyAcknowledged k => k.AnomalyId,
                    AnomalyResolved r => r.AnomalyId,
                    _ => null,
                };
                await w.WriteAsync(Csv.Line("event", Time(at), Time(e.ReceivedAt), Num(e.Version), e.Seq is { } s ? Num(s) : null, e.Type, anomalyId,
                    null, null, null, null, null, null, null, e.Data));
                if (Acknowledgement(payload) is { } x)
                {
                    await w.WriteAsync(Csv.Line(x.Action == "acknowledged" ? "acknowledgement" : "resolution", Time(at), Time(e.ReceivedAt), Num(e.Version),
                        null, e.Type, x.AnomalyId, null, null, null, x.By, null, null, x.Note, null));
                }

                if (++n % FlushEvery == 0)
                {
                    await w.FlushAsync(ct);
                }
            }

            foreach (var a in anomalies)
            {
                await w.WriteAsync(Csv.Line("anomaly", Time(a.DetectedAt), null, null, null, null, a.Id, a.Kind, a.Severity, a.Status,
                    a.ResolvedBy ?? a.AcknowledgedBy, null, null, a.Summary, a.Evidence.GetRawText()));
            }

            await foreach (var r in AuditAsync(audit, targets, ct))
            {
                await w.WriteAsync(Csv.Line("audit", Time(r.At), null, null, null, r.Action, null, null, null, null,
                    r.Role is null ? r.Actor : $"{r.Actor} ({r.Role})", r.Target, Num(r.Outcome), r.Remote, r.Detail));
                if (++n % FlushEvery == 0)
                {
                    await w.FlushAsync(ct);
                }
            }

            await w.FlushAsync(ct);
        }

        private async IAsyncEnumerable<AuditRecord> AuditAsync(AuditLog audit, string[] targets,
            [System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken ct)
        {
            long after = 0;
            while (true)
            {
                var page = await audit.ReadForTargetsAsync(targets, from, to, after, AuditPage, ct);
                foreach (var r in page)
                {
                    yield return r;
                }

                if (page.Count < AuditPage)
                {
                    yield break;
                }

                after = page[^1].Id;
            }
        }

        private static (string AnomalyId, string Action, string By, string? Note, bool Automatic)? Acknowledgement(PumpEvent e) => e switch
        {
            AnomalyAcknowledged k => (k.AnomalyId, "acknowledged", k.By, k.Note, false),
            AnomalyResolved r => (r.AnomalyId, "resolved", r.By, r.Note, r.Automatic),
            _ => null,
        };

        private static void WriteTime(Utf8JsonWriter w, string name, DateTimeOffset? t)
        {
            if (t is { } v)
            {
                w.WriteString(name, v.ToUniversalTime());
            }
            else
            {
                w.WriteNull(name);
            }
        }

        private static string Time(DateTimeOffset t) => t.ToUniversalTime().ToString("yyyy-MM-dd'T'HH:mm:ss.FFFFFFF'Z'", CultureInfo.InvariantCulture);

        private static string Num(long v) => v.ToString(CultureInfo.InvariantCulture);
    }
}
