using System.Text.Json;
using System.Text.Json.Serialization;

namespace PumpFleet.Domain.Pumps;

/// <summary>JSON options of <see cref="PumpState"/> snapshots.</summary>
public static class SnapshotJson
{
    /// <summary>Shared options: camelCase, nulls omitted, exact round trip of doubles.</summary>
    public static readonly JsonSerializerOptions Options = Create();

    private static JsonSerializerOptions Create()
    {
        var o = new JsonSerializerOptions(JsonSerializerDefaults.Web) { DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull };
        o.MakeReadOnly(populateMissingResolver: true);
        return o;
    }
}
