using System.Diagnostics;
using MQTTnet.Packets;

namespace PumpFleet.Gateway.Ingest;

/// <summary>
/// The gateway's activity source (<c>PumpFleet.Gateway</c>): a span per MQTT message received, continued from the
/// hub's W3C trace context when the hub sends one (MQTT 5 user properties <c>traceparent</c>, <c>tracestate</c>).
/// </summary>
public static class GatewayTracing
{
    /// <summary>The source name.</summary>
    public const string SourceName = "PumpFleet.Gateway";

    /// <summary>The MQTT 5 user property that carries a W3C <c>traceparent</c> (optional; docs/protocol.md, "Trace context").</summary>
    public const string TraceParentProperty = "traceparent";

    /// <summary>The MQTT 5 user property that carries a W3C <c>tracestate</c> (optional, only with <c>traceparent</c>).</summary>
    public const string TraceStateProperty = "tracestate";

    /// <summary>The gateway's activity source.</summary>
    public static readonly ActivitySource Source = new(SourceName);

    /// <summary>
    /// Starts the span of one received message: a consumer span, child of the hub's span when its user properties
    /// carry a valid <c>traceparent</c>; an invalid or missing one starts a new trace (trace context is advice, never a
    /// reason to refuse a message). Null when nobody listens.
    /// </summary>
    public static Activity? StartReceive(string hubId, string topic, IReadOnlyList<MqttUserProperty>? userProperties)
    {
        if (!Source.HasListeners())
        {
            return null;
        }

        string? traceParent = null;
        string? traceState = null;
        if (userProperties is not null)
        {
            foreach (var p in userProperties)
            {
                if (string.Equals(p.Name, TraceParentProperty, StringComparison.OrdinalIgnoreCase))
                {
                    traceParent ??= p.ReadValueAsString();
                }
                else if (string.Equals(p.Name, TraceStateProperty, StringComparison.OrdinalIgnoreCase))
                {
                    traceState ??= p.ReadValueAsString();
                }
            }
        }

        var parent = traceParent is not null && ActivityContext.TryParse(traceParent, traceState, isRemote: true, out var context)
            ? context
            : default;
        var activity = Source.StartActivity("mqtt receive", ActivityKind.Consumer, parent);
        if (activity is { IsAllDataRequested: true })
        {
            activity.SetTag("messaging.system", "mqtt");
            activity.SetTag("messaging.operation.type", "receive");
            activity.SetTag("messaging.destination.name", topic);
            activity.SetTag("pumpfleet.hub_id", hubId);
        }

        return activity;
    }
}
