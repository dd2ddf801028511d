using System.Text.Json;
using System.Text.Json.Serialization;

namespace PumpFleet.Gateway.Protocol;

/// <summary>The retained <c>ack</c> payload.</summary>
public sealed record AckPayload(string Serial, long CommittedSeq, DateTimeOffset At);

/// <summary>The <c>rejects</c> payload; <c>seq</c> is written as null for a whole message.</summary>
public sealed record RejectPayload(long? Seq, string Code, string Reason);

/// <summary>JSON options of the gateway's replies: camelCase, nulls kept (a whole-message reject says <c>"seq": null</c>).</summary>
public static class GatewayJson
{
    /// <summary>Shared options.</summary>
    public static readonly JsonSerializerOptions Options = Create();

    private static JsonSerializerOptions Create()
    {
        var o = new JsonSerializerOptions(JsonSerializerDefaults.Web) { DefaultIgnoreCondition = JsonIgnoreCondition.Never };
        o.MakeReadOnly(populateMissingResolver: true);
        return o;
    }
}
