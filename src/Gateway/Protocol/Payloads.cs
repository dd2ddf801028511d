using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Json.Serialization;

namespace PumpFleet.Gateway.Protocol;

/// <summary>
/// The retained <c>ack</c> payload: <c>committedSeq</c> is the contiguous watermark, <c>highestSeq</c> the highest
/// seq stored and <c>missing</c> the first (at most 32) inclusive ranges between them not accounted for.
/// </summary>
public sealed record AckPayload(string Serial, long CommittedSeq, long HighestSeq, long[][] Missing, string At);

/// <summary>The <c>rejects</c> payload; <c>seq</c> is written as null for a whole message.</summary>
public sealed record RejectPayload(long? Seq, string Code, string Reason);

/// <summary>JSON options of the gateway's replies: camelCase, nulls kept (a whole-message reject says <c>"seq": null</c>).</summary>
public static class GatewayJson
{
    /// <summary>Shared options.</summary>
    public static readonly JsonSerializerOptions Options = Create();

    private static JsonSerializerOptions Create()
    {
        var o = new JsonSerializerOptions(JsonSerializerDefaults.Web)
        {
            DefaultIgnoreCondition = JsonIgnoreCondition.Never,
            // Replies go to devices and people reading MQTT traffic, never into HTML: keep quotes and '≥' readable.
            Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
        };
        o.MakeReadOnly(populateMissingResolver: true);
        return o;
    }
}

/// <summary>Formatting of platform timestamps on the wire.</summary>
public static class Rfc3339
{
    /// <summary>UTC with milliseconds and <c>Z</c>, e.g. <c>2026-11-24T03:00:00.000Z</c>.</summary>
    public static string Format(DateTimeOffset t) =>
        t.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss.fff'Z'", System.Globalization.CultureInfo.InvariantCulture);
}
