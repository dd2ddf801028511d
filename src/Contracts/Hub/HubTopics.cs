using System.Text.RegularExpressions;

namespace PumpFleet.Contracts.Hub;

/// <summary>What a topic of hub protocol v1 addresses.</summary>
public enum HubTopicKind
{
    /// <summary>Not a v1 topic at all.</summary>
    Unknown,
    /// <summary><c>pumpfleet/v1/hubs/{hubId}/pumps/{serial}/events</c>.</summary>
    Events,
    /// <summary><c>pumpfleet/v1/hubs/{hubId}/pumps/{serial}/ack</c> (platform to hub).</summary>
    Ack,
    /// <summary><c>pumpfleet/v1/hubs/{hubId}/pumps/{serial}/rejects</c> (platform to hub).</summary>
    Rejects,
    /// <summary><c>pumpfleet/v1/hubs/{hubId}/status</c>.</summary>
    Status,
}

/// <summary>A parsed topic. <see cref="IdsValid"/> is false when the shape matches but an id breaks the pattern.</summary>
public readonly record struct HubTopic(HubTopicKind Kind, string HubId, string? Serial, bool IdsValid);

/// <summary>Topic names of hub protocol v1 (docs/protocol.md), shared by the gateway and the simulator's hubs.</summary>
public static partial class HubTopics
{
    /// <summary>Prefix of every v1 topic.</summary>
    public const string Prefix = "pumpfleet/v1/hubs/";

    /// <summary>True when <paramref name="id"/> may appear in a topic (hub ids and serials).</summary>
    public static bool IsValidId(string? id) => id is not null && IdPattern().IsMatch(id);

    /// <summary>The events topic of a pump.</summary>
    public static string Events(string hubId, string serial) => $"{Prefix}{hubId}/pumps/{serial}/events";

    /// <summary>The retained ack topic of a pump.</summary>
    public static string Ack(string hubId, string serial) => $"{Prefix}{hubId}/pumps/{serial}/ack";

    /// <summary>The rejects topic of a pump.</summary>
    public static string Rejects(string hubId, string serial) => $"{Prefix}{hubId}/pumps/{serial}/rejects";

    /// <summary>The status topic of a hub.</summary>
    public static string Status(string hubId) => $"{Prefix}{hubId}/status";

    /// <summary>Parses a topic name (never a filter).</summary>
    public static HubTopic Parse(string topic)
    {
        if (!topic.StartsWith(Prefix, StringComparison.Ordinal))
        {
            return new(HubTopicKind.Unknown, "", null, false);
        }

        var parts = topic[Prefix.Length..].Split('/');
        if (parts.Length == 2 && parts[1] == "status")
        {
            return new(HubTopicKind.Status, parts[0], null, IsValidId(parts[0]));
        }

        if (parts.Length == 4 && parts[1] == "pumps")
        {
            var kind = parts[3] switch
            {
                "events" => HubTopicKind.Events,
                "ack" => HubTopicKind.Ack,
                "rejects" => HubTopicKind.Rejects,
                _ => HubTopicKind.Unknown,
            };
            return new(kind, parts[0], parts[2], IsValidId(parts[0]) && IsValidId(parts[2]));
        }

        return new(HubTopicKind.Unknown, parts[0], null, false);
    }

    [GeneratedRegex("^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$", RegexOptions.CultureInvariant)]
    private static partial Regex IdPattern();
}
