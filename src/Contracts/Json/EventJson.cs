using System.Text.Json;
using System.Text.Json.Serialization;
using PumpFleet.Contracts.Events;

namespace PumpFleet.Contracts.Json;

/// <summary>
/// JSON of event payloads as stored (jsonb) and as served by the API: camelCase fields of the hub protocol,
/// nulls omitted, times as RFC 3339. The type name travels beside the payload, never inside it.
/// </summary>
public static class EventJson
{
    /// <summary>Options shared by the store, the API and the simulator.</summary>
    public static readonly JsonSerializerOptions Options = CreateOptions();

    private static JsonSerializerOptions CreateOptions()
    {
        var o = new JsonSerializerOptions(JsonSerializerDefaults.Web)
        {
            DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
            NumberHandling = JsonNumberHandling.Strict,
        };
        o.MakeReadOnly(populateMissingResolver: true);
        return o;
    }

    /// <summary>Serialises an event's payload.</summary>
    public static string Serialize(PumpEvent e) => JsonSerializer.Serialize(e, e.GetType(), Options);

    /// <summary>Deserialises a payload stored under <paramref name="typeName"/>.</summary>
    public static PumpEvent Deserialize(string typeName, string json)
    {
        var type = EventTypes.TypeOf(typeName) ?? throw new JsonException($"Unknown event type '{typeName}'.");
        return (PumpEvent)(JsonSerializer.Deserialize(json, type, Options)
            ?? throw new JsonException($"Payload of '{typeName}' is null."));
    }
}
