using System.Text.Json.Serialization;

namespace PumpFleet.Domain.States;

/// <summary>
/// Where an anomaly is in its life. In snapshots and on the wire it is the lower-case name (<c>open</c>,
/// <c>acknowledged</c>, <c>resolved</c>), the strings protocol.md §2 and the read models use.
/// </summary>
[JsonConverter(typeof(JsonStringEnumConverter<AnomalyStatus>))]
public enum AnomalyStatus
{
    [JsonStringEnumMemberName("open")]
    Open,

    [JsonStringEnumMemberName("acknowledged")]
    Acknowledged,

    [JsonStringEnumMemberName("resolved")]
    Resolved,
}

/// <summary>The wire names of <see cref="AnomalyStatus"/>.</summary>
public static class AnomalyStatuses
{
    public const string Open = "open";
    public const string Acknowledged = "acknowledged";
    public const string Resolved = "resolved";

    /// <summary>The wire name.</summary>
    public static string ToWire(this AnomalyStatus status) => status switch
    {
        AnomalyStatus.Open => Open,
        AnomalyStatus.Acknowledged => Acknowledged,
        AnomalyStatus.Resolved => Resolved,
        _ => throw new ArgumentOutOfRangeException(nameof(status), status, null),
    };
}
