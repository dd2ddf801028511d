namespace PumpFleet.Simulator.Wire;

/// <summary>MQTT topics of hub protocol v1.</summary>
public static class Topics
{
    /// <summary>Prefix of every topic.</summary>
    public const string Root = "pumpfleet/v1/hubs/";

    /// <summary>Event batches, hub → platform.</summary>
    public static string Events(string hubId, string serial) => $"{Root}{hubId}/pumps/{serial}/events";

    /// <summary>Retained acks, platform → hub.</summary>
    public static string Ack(string hubId, string serial) => $"{Root}{hubId}/pumps/{serial}/ack";

    /// <summary>Rejects, platform → hub.</summary>
    public static string Rejects(string hubId, string serial) => $"{Root}{hubId}/pumps/{serial}/rejects";

    /// <summary>Retained hub status with last will.</summary>
    public static string Status(string hubId) => $"{Root}{hubId}/status";

    /// <summary>All acks of a hub's pumps.</summary>
    public static string AckFilter(string hubId) => $"{Root}{hubId}/pumps/+/ack";

    /// <summary>All rejects of a hub's pumps.</summary>
    public static string RejectsFilter(string hubId) => $"{Root}{hubId}/pumps/+/rejects";

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
        return parts.Length >= 4 && parts[0] == "pumpfleet" && parts[1] == "v1" && parts[2] == "hubs" ? parts[3] : null;
    }
}
