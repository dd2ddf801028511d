using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using System.Text.Json;
using System.Threading.Channels;
using MQTTnet;
using MQTTnet.Protocol;
using MQTTnet.Server;
using PumpFleet.Simulator.Transport;
using PumpFleet.Simulator.Wire;
using PumpFleet.TestSupport;

namespace PumpFleet.Simulator.Tests;

/// <summary>
/// An embedded MQTTnet broker plus a minimal platform: stores events by (serial, seq), publishes retained acks with
/// the highest stored seq, and can cut one hub off to test the hub's resend.
/// </summary>
internal sealed class FakePlatform : IAsyncDisposable
{
    public const string FleetSecret = "test-secret";
    private const string PlatformUser = "platform";
    private const string PlatformPassword = "platform-password";

    private readonly MqttServer _server;
    private readonly IMqttClient _client;
    private readonly Channel<(string Hub, string Serial, long Committed)> _acks = Channel.CreateUnbounded<(string, string, long)>();
    private readonly ConcurrentDictionary<string, long> _committed = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, long> _published = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, string> _hubOf = new(StringComparer.Ordinal);
    private readonly CancellationTokenSource _stop = new();
    private Task? _ackPublisher;
    private Task? _cut;
    private int _targetMessages;
    private volatile int _phase; // 0 before the cut, 1 dropping the target hub, 2 after it reconnected

    private FakePlatform(int port)
    {
        Port = port;
        var options = new MqttServerOptionsBuilder()
            .WithDefaultEndpoint()
            .WithDefaultEndpointBoundIPAddress(IPAddress.Loopback)
            .WithDefaultEndpointBoundIPV6Address(IPAddress.None)
            .WithDefaultEndpointPort(port)
            .Build();
        _server = new MqttServerFactory().CreateMqttServer(options);
        _server.ValidatingConnectionAsync += e =>
        {
            var ok = e.UserName == PlatformUser
                ? e.Password == PlatformPassword
                : e.UserName == e.ClientId && e.Password == FleetSecretHubCredentials.Derive(FleetSecret, e.UserName ?? "");
            if (!ok)
            {
                e.ReasonCode = MqttConnectReasonCode.BadUserNameOrPassword;
            }

            return Task.CompletedTask;
        };
        _server.InterceptingPublishAsync += OnPublishAtBrokerAsync;
        _server.ClientConnectedAsync += e =>
        {
            if (e.ClientId == TargetHub && _phase == 1)
            {
                _phase = 2;
            }

            return Task.CompletedTask;
        };
        _client = new MqttClientFactory().CreateMqttClient();
        _client.ApplicationMessageReceivedAsync += OnEventsAsync;
    }

    public int Port { get; }

    /// <summary>Hub to cut off after <see cref="CutAfterMessages"/> of its messages.</summary>
    public string? TargetHub { get; init; }

    public int CutAfterMessages { get; init; } = 10;

    /// <summary>Every stored (serial, seq) with how often it arrived.</summary>
    public ConcurrentDictionary<(string Serial, long Seq), int> Stored { get; } = new();

    /// <summary>Stored events of the target hub that arrived after it reconnected.</summary>
    public ConcurrentBag<(string Serial, long Seq)> AfterReconnect { get; } = [];

    /// <summary>Events of the target hub dropped as if the platform had lost them before they were durable.</summary>
    public ConcurrentBag<(string Serial, long Seq)> Dropped { get; } = [];

    /// <summary>committedSeq per pump of the target hub published (retained) when it was cut off.</summary>
    public Dictionary<string, long> CommittedAtCut { get; } = new(StringComparer.Ordinal);

    public ConcurrentBag<string> DeviceSeenFor { get; } = [];

    /// <summary>Hub status messages in arrival order.</summary>
    public ConcurrentQueue<(string Hub, string Payload)> Statuses { get; } = new();

    public bool CutHappened => _phase >= 1;

    public bool Reconnected => _phase == 2;

    public static async Task<FakePlatform> StartAsync(string? targetHub, CancellationToken cancellationToken)
    {
        var p = new FakePlatform(Ports.Free()) { TargetHub = targetHub };
        await p._server.StartAsync();
        var connect = await p._client.ConnectAsync(new MqttClientOptionsBuilder()
            .WithTcpServer("127.0.0.1", p.Port)
            .WithClientId(PlatformUser)
            .WithCredentials(PlatformUser, PlatformPassword)
            .Build(), cancellationToken);
        Assert.Equal(MqttClientConnectResultCode.Success, connect.ResultCode);
        await p._client.SubscribeAsync(new MqttClientSubscribeOptionsBuilder()
            .WithTopicFilter("pumpfleet/v1/hubs/+/pumps/+/events", MqttQualityOfServiceLevel.AtLeastOnce)
            .WithTopicFilter("pumpfleet/v1/hubs/+/status", MqttQualityOfServiceLevel.AtLeastOnce)
            .Build(), cancellationToken);
        p._ackPublisher = Task.Run(() => p.PublishAcksAsync(p._stop.Token), CancellationToken.None);
        return p;
    }


    private async Task OnEventsAsync(MqttApplicationMessageReceivedEventArgs e)
    {
        var topic = e.ApplicationMessage.Topic;
        var hub = Topics.HubOf(topic)!;
        if (topic == Topics.Status(hub))
        {
            Statuses.Enqueue((hub, e.ApplicationMessage.ConvertPayloadToString()));
            return;
        }

        var serial = Topics.SerialOf(topic)!;
        _hubOf[serial] = hub;
        using var doc = JsonDocument.Parse(e.ApplicationMessage.ConvertPayloadToString());
        var seqs = doc.RootElement.GetProperty("events").EnumerateArray().Select(x => x.GetProperty("seq").GetInt64()).ToList();
        if (doc.RootElement.TryGetProperty("device", out _))
        {
            DeviceSeenFor.Add(serial);
        }

        if (hub == TargetHub && _phase == 2)
        {
            foreach (var s in seqs)
            {
                AfterReconnect.Add((serial, s));
            }
        }

        foreach (var s in seqs)
        {
            Stored.AddOrUpdate((serial, s), 1, (_, n) => n + 1);
        }

        var committed = _committed.AddOrUpdate(serial, seqs.Max(), (_, c) => Math.Max(c, seqs.Max()));
        await _acks.Writer.WriteAsync((hub, serial, committed));
    }

    /// <summary>
    /// Cuts the target hub at the broker: its n-th batch and everything else it sends on that connection are dropped
    /// (as if lost before they were durable) and it is disconnected. Doing this in the broker, in the hub's own
    /// receive order, keeps the test free of races with the platform's processing.
    /// </summary>
    private Task OnPublishAtBrokerAsync(InterceptingPublishEventArgs e)
    {
        if (e.ClientId != TargetHub || _phase == 2 || !e.ApplicationMessage.Topic.EndsWith("/events", StringComparison.Ordinal))
        {
            return Task.CompletedTask;
        }

        if (_phase == 0 && Interlocked.Increment(ref _targetMessages) == CutAfterMessages)
        {
            // What the hub can know is what was published as the retained ack, not what is stored.
            foreach (var (serial, committed) in _published)
            {
                if (_hubOf.GetValueOrDefault(serial) == TargetHub)
                {
                    CommittedAtCut[serial] = committed;
                }
            }

            _phase = 1;
            _cut = Task.Run(async () =>
            {
                var client = (await _server.GetClientsAsync()).Single(c => c.Id == TargetHub);
                await client.DisconnectAsync(new MqttServerClientDisconnectOptions { ReasonCode = MqttDisconnectReasonCode.AdministrativeAction });
            });
        }

        if (_phase == 1)
        {
            e.ProcessPublish = false;
            var serial = Topics.SerialOf(e.ApplicationMessage.Topic)!;
            using var doc = JsonDocument.Parse(e.ApplicationMessage.ConvertPayloadToString());
            foreach (var x in doc.RootElement.GetProperty("events").EnumerateArray())
            {
                Dropped.Add((serial, x.GetProperty("seq").GetInt64()));
            }
        }

        return Task.CompletedTask;
    }

    private async Task PublishAcksAsync(CancellationToken cancellationToken)
    {
        try
        {
            await foreach (var (hub, serial, committed) in _acks.Reader.ReadAllAsync(cancellationToken))
            {
                await _client.PublishAsync(new MqttApplicationMessageBuilder()
                    .WithTopic(Topics.Ack(hub, serial))
                    .WithPayload(WireJson.Ack(serial, committed, DateTimeOffset.UnixEpoch))
                    .WithQualityOfServiceLevel(MqttQualityOfServiceLevel.AtLeastOnce)
                    .WithRetainFlag()
                    .Build(), cancellationToken);
                _published.AddOrUpdate(serial, committed, (_, c) => Math.Max(c, committed));
            }
        }
        catch (Exception e) when (e is OperationCanceledException || cancellationToken.IsCancellationRequested)
        {
            // Test over. MQTTnet reports a publish cut short by the token as a timeout, not as a cancellation.
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        _acks.Writer.TryComplete();
        if (_ackPublisher is not null)
        {
#pragma warning disable VSTHRD003 // thread-pool task, no synchronisation context
            await _ackPublisher;
#pragma warning restore VSTHRD003
        }

        if (_cut is not null)
        {
#pragma warning disable VSTHRD003 // thread-pool task, no synchronisation context
            await _cut;
#pragma warning restore VSTHRD003
        }

        _client.Dispose();
        await _server.StopAsync();
        _server.Dispose();
        _stop.Dispose();
    }
}
