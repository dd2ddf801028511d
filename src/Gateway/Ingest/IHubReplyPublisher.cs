namespace PumpFleet.Gateway.Ingest;

/// <summary>Publishes the platform's replies (ack, rejects) through whichever broker the gateway uses.</summary>
public interface IHubReplyPublisher
{
    /// <summary>Publishes at QoS 1. Throws when the broker cannot take it (the message is then not acknowledged).</summary>
    Task PublishAsync(string topic, byte[] payload, bool retain, CancellationToken ct);
}
