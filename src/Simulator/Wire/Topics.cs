using PumpFleet.Contracts.Hub;

namespace PumpFleet.Simulator.Wire;

/// <summary>MQTT topics of hub protocol v1, as the simulated hubs use them: the names come from <see cref="HubTopics"/>.</summary>
public static class Topics
{
    /// <summary>Prefix of every topic.</summary>
    public const string Root = HubTopics.Prefix;

    /// <summary>Event batches, hub → platform.</summary>
    public static string Events(string hubId, string serial) => HubTopics.Events(hubId, serial);

    /// <summary>Retained acks, platform → hub.</summary>
    public static string Ack(string hubId, string serial) => HubTopics.Ack(hubId, serial);

    /// <summary>Rejects, platform → hub.</summary>
    public static string Rejects(string hubId, string serial) => HubTopics.Rejects(hubId, serial);

    /// <summary>Retained hub status with last will.</summary>
    public static string Status(string hubId) => HubTopics.Status(hubId);

    /// <summary>All acks of a hub's pumps.</summary>
    public static string AckFilter(string hubId) => HubTopics.Ack(hubId, "+");

    /// <summary>All rejects of a hub's pumps.</summary>
    public static string RejectsFilter(string hubId) => HubTopics.Rejects(hubId, "+");

    /// <summary>The serial in a <c>.../pumps/{serial}/...</c> topic, or null.</summary>
    public static string? SerialOf(string topic)
    {
        var parts = topic.Split('/');
        return parts.Length == 7 && parts[4] == "pumps" ? parts[5] : null;
    }

    /// <summary>The hub id in a topic under <see cref="Root"/>, or null.</summary>
    public static string? HubOf(string topic)
    {
        var parts = topic.Split('/');
        return topic.StartsWith(Root, StringComparison.Ordinal) && parts.Length >= 4 ? parts[3] : null;
    }
}
