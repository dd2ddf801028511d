using System.Collections.Concurrent;
using System.Diagnostics;
using MQTTnet.Packets;
using MQTTnet.Server;
using PumpFleet.Gateway.Ingest;

namespace PumpFleet.Gateway.Mqtt;

/// <summary>
/// The <c>puback</c> span of a traced QoS 1 message: from the end of the publish interceptor (the batch is durable and
/// MQTTnet builds the PUBACK) until MQTTnet hands that PUBACK to the connection. MQTTnet 5 raises no event after a
/// PUBACK is written; the last hook before the socket write is its outbound packet interceptor, which this listens on.
/// </summary>
/// <remarks>
/// MQTTnet processes one client's publishes one at a time (its receive loop awaits the interceptor) and sends that
/// client's PUBACKs in the same order, so the n-th traced publish of a client that ends without closing the
/// connection owns the n-th PUBACK sent to it: a queue per client is the whole correlation (the interceptor's event
/// carries no packet identifier). Only sampled messages are queued; a client's queue is dropped when it disconnects.
/// </remarks>
internal sealed class PubAckTracer
{
    private readonly ConcurrentDictionary<string, ConcurrentQueue<Pending>> _pending = new(StringComparer.Ordinal);

    /// <summary>Called as the interceptor of <paramref name="clientId"/>'s publish returns and MQTTnet will acknowledge it.</summary>
    public void Expect(string clientId, Activity receive) =>
        _pending.GetOrAdd(clientId, static _ => new ConcurrentQueue<Pending>()).Enqueue(new Pending(receive.Context, DateTime.UtcNow));

    /// <summary>MQTTnet's outbound packet interceptor: ends the span of the client's oldest traced publish at its PUBACK.</summary>
    public Task OnOutboundAsync(InterceptingPacketEventArgs e)
    {
        if (e.Packet is MqttPubAckPacket ack && _pending.TryGetValue(e.ClientId, out var queue) && queue.TryDequeue(out var pending))
        {
            using var span = GatewayTracing.Source.StartActivity("puback", ActivityKind.Producer, pending.Receive, startTime: pending.At);
            if (span is { IsAllDataRequested: true })
            {
                span.SetTag("messaging.system", "mqtt");
                span.SetTag("messaging.operation.type", "settle");
                span.SetTag("mqtt.packet_id", ack.PacketIdentifier);
                span.SetTag("mqtt.reason_code", (int)ack.ReasonCode);
            }
        }

        return Task.CompletedTask;
    }

    /// <summary>Forgets a client's queue when it disconnects (its remaining PUBACKs will not be sent).</summary>
    public void Forget(string clientId) => _pending.TryRemove(clientId, out _);

    private readonly record struct Pending(ActivityContext Receive, DateTime At);
}
