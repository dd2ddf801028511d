using System.Diagnostics;
using System.Text.Json;
using PumpFleet.EventStore;

namespace PumpFleet.Projections;

/// <summary>
/// The projection engine's activity source (<c>PumpFleet.Projections</c>): a span per applied page, linked to the
/// ingest traces of the events it applies. A page serves many messages, so it starts a trace of its own (as a group
/// commit does) and carries one <see cref="ActivityLink"/> per distinct <c>traceparent</c> that the pump grain stored
/// in the events' metadata (only events ingested while tracing sampled them carry one).
/// </summary>
public static class ProjectionTracing
{
    /// <summary>The source name.</summary>
    public const string SourceName = "PumpFleet.Projections";

    /// <summary>The metadata key of an event's ingest trace (W3C <c>traceparent</c>, written by the pump grain).</summary>
    public const string TraceParentKey = "traceparent";

    /// <summary>
    /// Links per page at most: OpenTelemetry's default span limit is 128 links, and a page of 500 single-event
    /// messages would otherwise carry 500. The tag <c>pumpfleet.linked_traces</c> says how many the page had.
    /// </summary>
    public const int MaxLinks = 128;

    /// <summary>The engine's activity source.</summary>
    public static readonly ActivitySource Source = new(SourceName);

    /// <summary>Starts the span of one page; null when nobody listens (then the metadata is not even read).</summary>
    public static Activity? StartPage(string projection, int logPartition, IReadOnlyList<StoredEvent> events)
    {
        if (!Source.HasListeners())
        {
            return null;
        }

        var traces = new HashSet<ActivityContext>();
        foreach (var e in events)
        {
            if (TraceOf(e.Metadata) is { } context)
            {
                traces.Add(context);
            }
        }

        var activity = Source.StartActivity("projection page", ActivityKind.Internal, parentContext: default,
            links: traces.Take(MaxLinks).Select(c => new ActivityLink(c)));
        activity?.SetTag("pumpfleet.projection", projection);
        activity?.SetTag("pumpfleet.log_partition", logPartition);
        activity?.SetTag("pumpfleet.events", events.Count);
        activity?.SetTag("pumpfleet.linked_traces", traces.Count);
        return activity;
    }

    // The stored traceparent of one event, if it has a valid one; anything else in the metadata is ignored (it is
    // free-form JSON written by other versions too), and a malformed value is no reason to fail a page.
    private static ActivityContext? TraceOf(string? metadata)
    {
        if (metadata is null || !metadata.Contains(TraceParentKey, StringComparison.Ordinal))
        {
            return null;
        }

        try
        {
            using var doc = JsonDocument.Parse(metadata);
            return doc.RootElement.ValueKind == JsonValueKind.Object
                && doc.RootElement.TryGetProperty(TraceParentKey, out var value) && value.ValueKind == JsonValueKind.String
                && ActivityContext.TryParse(value.GetString(), null, isRemote: true, out var context)
                ? context
                : null;
        }
        catch (JsonException)
        {
            return null;
        }
    }
}
