using System.Diagnostics;

namespace PumpFleet.EventStore;

/// <summary>The event store's activity source (<c>PumpFleet.EventStore</c>): one span per append; Npgsql's command spans nest below it.</summary>
public static class EventStoreTracing
{
    /// <summary>The source name.</summary>
    public const string SourceName = "PumpFleet.EventStore";

    /// <summary>The event store's activity source.</summary>
    public static readonly ActivitySource Source = new(SourceName);
}
