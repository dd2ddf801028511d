using System.Text;
using System.Text.Json;
using System.Threading.Channels;
using MQTTnet;
using MQTTnet.Protocol;

namespace PumpFleet.Gateway.Tests.Infrastructure;

/// <summary>A message the hub received.</summary>
public sealed record Received(string Topic, string Payload, bool Retain)
{
    public JsonElement Json => JsonDocument.Parse(Payload).RootElement;
}

/// <summary>A bedside hub as the tests drive it: an MQTTnet client that subscribes to its own subtree.</summary>
public sealed class TestHub : IAsyncDisposable
{
    private readonly Channel<Received> _inbox = Channel.CreateUnbounded<Received>();
    private readonly List<Received> _backlog = [];

    private TestHub(IMqttClient client, string hubId)
    {
        Client = client;
        HubId = hubId;
    }

    public IMqttClient Client { get; }

    public string HubId { get; }

    public MqttClientConnectResult? LastConnect { get; private set; }

    public static TestHub Create(string hubId)
    {
        var client = new MqttClientFactory().CreateMqttClient();
        var hub = new TestHub(client, hubId);
        client.ApplicationMessageReceivedAsync += e =>
        {
            hub._inbox.Writer.TryWrite(new Received(e.ApplicationMessage.Topic, e.ApplicationMessage.ConvertPayloadToString(), e.ApplicationMessage.Retain));
            return Task.CompletedTask;
        };
        return hub;
    }

    /// <summary>Connects (a persistent session) and subscribes to the hub's own subtree; returns the CONNACK result.</summary>
    public async Task<MqttClientConnectResult> ConnectAsync(int port, string? password, string? username = null, bool subscribe = true,
        string? tlsThumbprint = null)
    {
        var builder = new MqttClientOptionsBuilder();
        if (tlsThumbprint is not null)
        {
            // Pinned: the test's self-signed certificate, and nothing else.
            builder.WithTlsOptions(t => t.UseTls().WithCertificateValidationHandler(c =>
                string.Equals(c.Certificate.GetCertHashString(), tlsThumbprint, StringComparison.OrdinalIgnoreCase)));
        }

        var options = builder
            .WithTcpServer("127.0.0.1", port)
            .WithClientId(HubId)
            .WithCredentials(username ?? HubId, password)
            .WithCleanStart(false)
            .WithSessionExpiryInterval(600)
            .WithTimeout(TimeSpan.FromSeconds(20))
            .WithWillTopic($"pumpfleet/v1/hubs/{HubId}/status").WithWillPayload("{\"online\":false}")
            .WithWillRetain().WithWillQualityOfServiceLevel(MqttQualityOfServiceLevel.AtLeastOnce)
            .Build();
        LastConnect = await Client.ConnectAsync(options, TestContext.Current.CancellationToken);
        if (subscribe && LastConnect.ResultCode == MqttClientConnectResultCode.Success)
        {
            await Client.SubscribeAsync(new MqttClientSubscribeOptionsBuilder()
                .WithTopicFilter(f => f.WithTopic($"pumpfleet/v1/hubs/{HubId}/pumps/+/ack").WithQualityOfServiceLevel(MqttQualityOfServiceLevel.AtLeastOnce))
                .WithTopicFilter(f => f.WithTopic($"pumpfleet/v1/hubs/{HubId}/pumps/+/rejects").WithQualityOfServiceLevel(MqttQualityOfServiceLevel.AtLeastOnce))
                .Build(), TestContext.Current.CancellationToken);
        }

        return LastConnect;
    }

    public Task<MqttClientPublishResult> PublishAsync(string serial, string payload) =>
        PublishRawAsync($"pumpfleet/v1/hubs/{HubId}/pumps/{serial}/events", Encoding.UTF8.GetBytes(payload));

    public async Task<MqttClientPublishResult> PublishRawAsync(string topic, byte[] payload) =>
        await Client.PublishAsync(new MqttApplicationMessageBuilder().WithTopic(topic).WithPayload(payload)
            .WithQualityOfServiceLevel(MqttQualityOfServiceLevel.AtLeastOnce).Build(), TestContext.Current.CancellationToken);

    /// <summary>Waits for a received message that matches; earlier non-matching ones stay available.</summary>
    public async Task<Received> WaitForAsync(Func<Received, bool> match, string what, TimeSpan? timeout = null)
    {
        var hit = _backlog.FirstOrDefault(match);
        if (hit is not null)
        {
            _backlog.Remove(hit);
            return hit;
        }

        using var cts = CancellationTokenSource.CreateLinkedTokenSource(TestContext.Current.CancellationToken);
        cts.CancelAfter(timeout ?? TimeSpan.FromSeconds(20));
        try
        {
            while (true)
            {
                var m = await _inbox.Reader.ReadAsync(cts.Token);
                if (match(m))
                {
                    return m;
                }

                _backlog.Add(m);
            }
        }
        catch (OperationCanceledException) when (!TestContext.Current.CancellationToken.IsCancellationRequested)
        {
            throw new TimeoutException($"Hub {HubId} did not receive {what}. Received: {string.Join(" | ", _backlog.Select(b => b.Topic + " " + b.Payload))}");
        }
    }

    /// <summary>Everything received so far and not yet consumed by a wait.</summary>
    public IReadOnlyList<Received> ReceivedSoFar()
    {
        while (_inbox.Reader.TryRead(out var m))
        {
            _backlog.Add(m);
        }

        return [.. _backlog];
    }

    /// <summary>Waits for an ack of <paramref name="serial"/> with committedSeq ≥ <paramref name="seq"/>.</summary>
    public Task<Received> WaitForAckAsync(string serial, long seq) =>
        WaitForAsync(m => m.Topic.EndsWith($"/pumps/{serial}/ack", StringComparison.Ordinal) && m.Json.GetProperty("committedSeq").GetInt64() >= seq,
            $"an ack of {serial} with committedSeq ≥ {seq}");

    /// <summary>Waits for an ack of <paramref name="serial"/> with highestSeq ≥ <paramref name="seq"/> (stored, whatever the watermark).</summary>
    public Task<Received> WaitForStoredAsync(string serial, long seq) =>
        WaitForAsync(m => m.Topic.EndsWith($"/pumps/{serial}/ack", StringComparison.Ordinal) && m.Json.GetProperty("highestSeq").GetInt64() >= seq,
            $"an ack of {serial} with highestSeq ≥ {seq}");

    /// <summary>Waits for a reject of <paramref name="serial"/> with <paramref name="code"/>.</summary>
    public Task<Received> WaitForRejectAsync(string serial, string code) =>
        WaitForAsync(m => m.Topic.EndsWith($"/pumps/{serial}/rejects", StringComparison.Ordinal) && m.Json.GetProperty("code").GetString() == code,
            $"a reject of {serial} with code {code}");

    public async ValueTask DisposeAsync()
    {
        if (Client.IsConnected)
        {
            await Client.DisconnectAsync(new MqttClientDisconnectOptionsBuilder().Build(), CancellationToken.None);
        }

        Client.Dispose();
    }
}
