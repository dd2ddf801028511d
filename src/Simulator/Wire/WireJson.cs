using System.Buffers;
using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;
using PumpFleet.Contracts.Events;
using PumpFleet.Contracts.Json;

namespace PumpFleet.Simulator.Wire;

/// <summary>JSON of hub protocol v1 as the simulator sends and reads it.</summary>
public static class WireJson
{
    private static readonly JsonSerializerOptions Options = CreateOptions();

    private static JsonSerializerOptions CreateOptions()
    {
        // The contracts' options, with times always written in UTC with "Z" as in protocol.md's examples.
        var o = new JsonSerializerOptions(EventJson.Options);
        o.Converters.Add(new UtcTimeConverter());
        o.MakeReadOnly(populateMissingResolver: true);
        return o;
    }

    /// <summary>RFC 3339 UTC with "Z", fractional seconds only when present.</summary>
    public static string FormatTime(DateTimeOffset t) =>
        t.UtcDateTime.ToString("yyyy'-'MM'-'dd'T'HH':'mm':'ss.FFFFFFF'Z'", CultureInfo.InvariantCulture);

    /// <summary>An event as it appears in <c>events</c>: <c>seq</c>, <c>type</c>, <c>at</c>, then its fields.</summary>
    /// <remarks>
    /// Written field by field because generation speed bounds the benchmarks; <see cref="EventViaSerializer"/> is the
    /// reference it must match byte for byte (a test checks this), and serves event types added later.
    /// </remarks>
    public static string Event(DeviceEvent e)
    {
        var buffer = new ArrayBufferWriter<byte>(256);
        using (var w = new Utf8JsonWriter(buffer))
        {
            w.WriteStartObject();
            w.WriteNumber("seq", e.Seq);
            w.WriteString("type", EventTypes.NameOf(e));
            w.WriteString("at", FormatTime(e.At));
            if (!WriteFields(w, e))
            {
                return EventViaSerializer(e);
            }

            w.WriteEndObject();
        }

        return Encoding.UTF8.GetString(buffer.WrittenSpan);
    }

    private static bool WriteFields(Utf8JsonWriter w, DeviceEvent e)
    {
        switch (e)
        {
            case DoseDelivered d:
                w.WriteString("from", FormatTime(d.From));
                w.WriteNumber("volumeMl", d.VolumeMl);
                w.WriteString("kind", d.Kind);
                return true;
            case ReservoirLevelReported l:
                w.WriteNumber("volumeMl", l.VolumeMl);
                w.WriteString("source", l.Source);
                return true;
            case StatusReported s:
                Optional(w, "batteryPct", s.BatteryPct);
                Optional(w, "batteryV", s.BatteryV);
                Optional(w, "tempC", s.TempC);
                if (s.Motor is not null)
                {
                    w.WriteString("motor", s.Motor);
                }

                return true;
            case PainReported p:
                w.WriteNumber("score", p.Score);
                return true;
            case BolusRequested b:
                w.WriteBoolean("granted", b.Granted);
                if (b.Reason is not null)
                {
                    w.WriteString("reason", b.Reason);
                }

                return true;
            case AlarmRaised a:
                w.WriteString("code", a.Code);
                w.WriteString("severity", a.Severity);
                return true;
            case AlarmCleared c:
                w.WriteString("code", c.Code);
                return true;
            case DeliveryStateChanged d:
                w.WriteString("state", d.State);
                if (d.Reason is not null)
                {
                    w.WriteString("reason", d.Reason);
                }

                return true;
            default:
                // Rare, nested types: the serializer writes them.
                return false;
        }
    }

    private static void Optional(Utf8JsonWriter w, string name, double? value)
    {
        if (value is { } v)
        {
            w.WriteNumber(name, v);
        }
    }

    /// <summary>The same JSON through the contracts' serializer options.</summary>
    public static string EventViaSerializer(DeviceEvent e)
    {
        var payload = JsonSerializer.SerializeToElement(e, e.GetType(), Options);
        var buffer = new ArrayBufferWriter<byte>(512);
        using (var w = new Utf8JsonWriter(buffer))
        {
            w.WriteStartObject();
            w.WriteNumber("seq", e.Seq);
            w.WriteString("type", EventTypes.NameOf(e));
            w.WriteString("at", FormatTime(e.At));
            foreach (var p in payload.EnumerateObject())
            {
                if (p.NameEquals("seq") || p.NameEquals("at"))
                {
                    continue;
                }

                p.WriteTo(w);
            }

            w.WriteEndObject();
        }

        return Encoding.UTF8.GetString(buffer.WrittenSpan);
    }

    /// <summary>The <c>device</c> object.</summary>
    public static string Device(DeviceInfo d) => JsonSerializer.Serialize(d, Options);

    /// <summary>A batch envelope around already serialised events.</summary>
    public static string Batch(DeviceInfo? device, IEnumerable<string> events)
    {
        var sb = new StringBuilder(1024);
        sb.Append("{\"v\":1,");
        if (device is not null)
        {
            sb.Append("\"device\":").Append(Device(device)).Append(',');
        }

        sb.Append("\"events\":[");
        var first = true;
        foreach (var e in events)
        {
            if (!first)
            {
                sb.Append(',');
            }

            sb.Append(e);
            first = false;
        }

        return sb.Append("]}").ToString();
    }

    /// <summary>The retained hub status.</summary>
    public static string Status(bool online, string? firmware, DateTimeOffset at) =>
        JsonSerializer.Serialize(new HubStatus(online, firmware, FormatTime(at)), Options);

    /// <summary>The hub's last will.</summary>
    public const string LastWill = "{\"online\":false}";

    /// <summary>An ack payload (for test platforms and tools).</summary>
    public static string Ack(string serial, long committedSeq, DateTimeOffset at) =>
        JsonSerializer.Serialize(new AckMessage(serial, committedSeq, FormatTime(at)), Options);

    /// <summary>Reads <c>committedSeq</c> from an ack; null when the payload is not an ack.</summary>
    public static long? ParseCommittedSeq(ReadOnlySpan<byte> json)
    {
        try
        {
            var reader = new Utf8JsonReader(json);
            using var doc = JsonDocument.ParseValue(ref reader);
            return doc.RootElement.ValueKind == JsonValueKind.Object
                && doc.RootElement.TryGetProperty("committedSeq", out var seq) && seq.TryGetInt64(out var v)
                ? v
                : null;
        }
        catch (JsonException)
        {
            return null;
        }
    }

    /// <summary>
    /// Reads an ack: <c>committedSeq</c> (the contiguous watermark), and the optional <c>highestSeq</c> and
    /// <c>missing</c> ranges (protocol.md §1); null when the payload is not an ack.
    /// </summary>
    public static AckInfo? ParseAck(ReadOnlySpan<byte> json)
    {
        try
        {
            var reader = new Utf8JsonReader(json);
            using var doc = JsonDocument.ParseValue(ref reader);
            var root = doc.RootElement;
            if (root.ValueKind != JsonValueKind.Object || !root.TryGetProperty("committedSeq", out var c) || !c.TryGetInt64(out var committed))
            {
                return null;
            }

            var highest = root.TryGetProperty("highestSeq", out var h) && h.TryGetInt64(out var hv) ? hv : committed;
            var missing = new List<(long From, long To)>();
            if (root.TryGetProperty("missing", out var m) && m.ValueKind == JsonValueKind.Array)
            {
                foreach (var r in m.EnumerateArray())
                {
                    if (r.ValueKind == JsonValueKind.Array && r.GetArrayLength() == 2 && r[0].TryGetInt64(out var from) && r[1].TryGetInt64(out var to))
                    {
                        missing.Add((from, to));
                    }
                }
            }

            return new AckInfo(committed, Math.Max(highest, committed), missing);
        }
        catch (JsonException)
        {
            return null;
        }
    }

    private sealed record HubStatus(bool Online, string? Firmware, string At);

    private sealed record AckMessage(string Serial, long CommittedSeq, string At);

    private sealed class UtcTimeConverter : JsonConverter<DateTimeOffset>
    {
        public override DateTimeOffset Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options) =>
            reader.GetDateTimeOffset();

        public override void Write(Utf8JsonWriter writer, DateTimeOffset value, JsonSerializerOptions options) =>
            writer.WriteStringValue(FormatTime(value));
    }
}

/// <summary>An ack as a hub reads it.</summary>
/// <param name="CommittedSeq">Every seq up to it is stored, rejected or declared lost: the hub may forget those events.</param>
/// <param name="HighestSeq">Highest seq stored (committedSeq when the platform did not send it).</param>
/// <param name="Missing">The first ranges between them the platform lacks (at most 32 are listed).</param>
public sealed record AckInfo(long CommittedSeq, long HighestSeq, IReadOnlyList<(long From, long To)> Missing);
