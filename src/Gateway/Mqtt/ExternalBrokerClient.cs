using System.Threading.Channels;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using MQTTnet;
using MQTTnet.Protocol;
using PumpFleet.Contracts.Hub;
using PumpFleet.Gateway.Hosting;
using PumpFleet.Gateway.Ingest;
using PumpFleet.Gateway.Protocol;

namespace PumpFleet.Gateway.Mqtt;

/// <summary>
/// External mode: an MQTT 5 client of a broker cluster. Gateways share the load through
/// <c>$share/&lt;group&gt;/…</c>; the session is persistent and acknowledgement manual, so a message is PUBACKed only
/// after the pipeline made it durable. Messages are partitioned by pump serial onto sequential workers, so one
/// pump's batches are stored in order while different pumps proceed in parallel. The broker's ReceiveMaximum
/// (MaxInFlight) bounds what is held unacknowledged.
/// </summary>
public sealed partial class ExternalBrokerClient(
    IOptions<MqttGatewayOptions> options,
    IServiceProvider services,
    GatewayInstruments instruments,
    TimeProvider time,
    ILogger<ExternalBrokerClient> logger) : BackgroundService, IHubReplyPublisher
{
    private static readonly TimeSpan MaxBackoff = TimeSpan.FromSeconds(5);
    private readonly IMqttClient _client = new MqttClientFactory().CreateMqttClient();
    private readonly InFlightTracker _inFlight = new(instruments);
    private Channel<MqttApplicationMessageReceivedEventArgs>[] _partitions = [];
    private readonly TaskCompletionSource _connected = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>Completes once the first connection and subscription are up (tests and readiness).</summary>
    public Task WaitConnectedAsync(CancellationToken ct) => _connected.Task.WaitAsync(ct);

    /// <summary>The topic filters the gateway subscribes to.</summary>
    public static IReadOnlyList<string> Filters(string group) =>
    [
        $"$share/{group}/{HubTopics.Prefix}+/pumps/+/events",
        $"$share/{group}/{HubTopics.Prefix}+/status",
    ];

    /// <inheritdoc />
    public async Task PublishAsync(string topic, byte[] payload, bool retain, CancellationToken ct)
    {
        var message = new MqttApplicationMessageBuilder().WithTopic(topic).WithPayload(payload)
            .WithQualityOfServiceLevel(MqttQualityOfServiceLevel.AtLeastOnce).WithRetainFlag(retain)
            .WithContentType("application/json").Build();
        var result = await _client.PublishAsync(message, ct);
        if (!result.IsSuccess)
        {
            throw new InvalidOperationException($"The broker refused the publish on {topic}: {result.ReasonCode} {result.ReasonString}");
        }
    }

    /// <inheritdoc />
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var o = options.Value;
        var pipeline = services.GetRequiredService<IngestPipeline>();
        _partitions = [.. Enumerable.Range(0, o.External.Partitions).Select(_ =>
            Channel.CreateUnbounded<MqttApplicationMessageReceivedEventArgs>(new UnboundedChannelOptions { SingleReader = true }))];
        var workers = _partitions.Select(p => Task.Run(() => WorkAsync(p.Reader, pipeline, stoppingToken), CancellationToken.None)).ToArray();

        _client.ApplicationMessageReceivedAsync += e =>
        {
            // Return at once: acknowledging is the worker's job, after durable storage. The channel cannot fill
            // beyond ReceiveMaximum because the broker sends no more unacked messages than that.
            e.AutoAcknowledge = false;
            var topic = HubTopics.Parse(e.ApplicationMessage.Topic);
            var key = topic.Serial ?? topic.HubId;
            var index = (int)((uint)StringComparer.Ordinal.GetHashCode(key) % (uint)_partitions.Length);
            _inFlight.Enter();
            if (!_partitions[index].Writer.TryWrite(e))
            {
                _inFlight.Exit();
            }

            return Task.CompletedTask;
        };

        var backoff = TimeSpan.FromMilliseconds(200);
        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                if (!_client.IsConnected)
                {
                    await ConnectAsync(o, stoppingToken);
                    backoff = TimeSpan.FromMilliseconds(200);
                    _connected.TrySetResult();
                }

                // Connection health is checked by a ping each interval; a lost connection is re-established
                // with the same persistent session, so unacked messages are delivered again.
                await Task.Delay(TimeSpan.FromSeconds(1), time, stoppingToken);
                if (_client.IsConnected && !await _client.TryPingAsync(stoppingToken))
                {
                    LogPingFailed();
                }
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                break;
            }
            catch (Exception e)
            {
                instruments.OnDependencyFailure(Dependencies.Broker);
                LogConnectFailed(o.External.Host!, o.External.Port, backoff, e);
                await Task.Delay(backoff, time, stoppingToken).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
                backoff = TimeSpan.FromTicks(Math.Min(backoff.Ticks * 2, MaxBackoff.Ticks));
            }
        }

        foreach (var p in _partitions)
        {
            p.Writer.TryComplete();
        }

        await Task.WhenAll(workers).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        if (_client.IsConnected)
        {
            // A clean disconnect keeps the session (expiry > 0): whatever was not acknowledged is redelivered.
            await _client.DisconnectAsync(new MqttClientDisconnectOptionsBuilder().WithReason(MqttClientDisconnectOptionsReason.NormalDisconnection).Build(),
                CancellationToken.None).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        }
    }

    private async Task ConnectAsync(MqttGatewayOptions o, CancellationToken ct)
    {
        var x = o.External;
        var builder = new MqttClientOptionsBuilder()
            .WithTcpServer(x.Host, x.Port)
            .WithProtocolVersion(MQTTnet.Formatter.MqttProtocolVersion.V500)
            .WithClientId(x.ClientId ?? $"pumpfleet-gateway-{Environment.MachineName}")
            .WithCleanStart(false)
            .WithSessionExpiryInterval(x.SessionExpirySeconds)
            .WithReceiveMaximum((ushort)o.MaxInFlight)
            .WithKeepAlivePeriod(TimeSpan.FromSeconds(15));
        if (!string.IsNullOrEmpty(x.Username))
        {
            builder.WithCredentials(x.Username, x.Password);
        }

        if (x.UseTls)
        {
            builder.WithTlsOptions(t =>
            {
                t.UseTls();
                if (x.AllowUntrustedCertificates)
                {
                    t.WithCertificateValidationHandler(_ => true);
                }
            });
        }

        var result = await _client.ConnectAsync(builder.Build(), ct);
        if (result.ResultCode != MqttClientConnectResultCode.Success)
        {
            throw new InvalidOperationException($"The broker refused the connection: {result.ResultCode} {result.ReasonString}");
        }

        if (!result.SharedSubscriptionAvailable)
        {
            LogNoSharedSubscriptions();
        }

        var subscribe = new MqttClientSubscribeOptionsBuilder();
        foreach (var filter in Filters(x.SharedGroup))
        {
            subscribe.WithTopicFilter(f => f.WithTopic(filter).WithQualityOfServiceLevel(MqttQualityOfServiceLevel.AtLeastOnce));
        }

        var sub = await _client.SubscribeAsync(subscribe.Build(), ct);
        foreach (var item in sub.Items)
        {
            if ((int)item.ResultCode > (int)MqttClientSubscribeResultCode.GrantedQoS2)
            {
                throw new InvalidOperationException($"The broker refused the subscription {item.TopicFilter.Topic}: {item.ResultCode}");
            }
        }

        LogConnected(x.Host!, x.Port, result.IsSessionPresent);
    }

    private async Task WorkAsync(ChannelReader<MqttApplicationMessageReceivedEventArgs> reader, IngestPipeline pipeline, CancellationToken ct)
    {
        await foreach (var e in reader.ReadAllAsync(CancellationToken.None))
        {
            try
            {
                if (!ct.IsCancellationRequested)
                {
                    await ProcessWithRetryAsync(e, pipeline, ct);
                }
            }
            finally
            {
                _inFlight.Exit();
            }
        }
    }

    private async Task ProcessWithRetryAsync(MqttApplicationMessageReceivedEventArgs e, IngestPipeline pipeline, CancellationToken ct)
    {
        var m = e.ApplicationMessage;
        var topic = HubTopics.Parse(m.Topic);
        using var receive = GatewayTracing.StartReceive(topic.HubId, m.Topic, m.UserProperties);
        // The broker authenticated the publisher and its ACL keeps hubs in their own subtree: the topic's hub id
        // is the publisher. The pipeline still checks pairing.
        var inbound = new InboundMessage(topic.HubId, m.Topic, System.Buffers.BuffersExtensions.ToArray(m.Payload), time.GetUtcNow(), e.PacketIdentifier.ToString(System.Globalization.CultureInfo.InvariantCulture));
        var backoff = TimeSpan.FromMilliseconds(200);
        while (!ct.IsCancellationRequested)
        {
            try
            {
                await pipeline.ProcessAsync(inbound, ct);
                await e.AcknowledgeAsync(ct);
                return;
            }
            catch (Exception x) when (x is DependencyUnavailableException or RetryLaterException)
            {
                // Held unacknowledged and retried here, in order, until the dependency is back. If this instance
                // dies meanwhile, the broker redelivers the message from the persistent session.
                LogRetrying(m.Topic, backoff, x is DependencyUnavailableException d ? d.Dependency : "ordering");
                await Task.Delay(backoff, time, ct).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
                backoff = TimeSpan.FromTicks(Math.Min(backoff.Ticks * 2, MaxBackoff.Ticks));
            }
            catch (OperationCanceledException) when (ct.IsCancellationRequested)
            {
                return;
            }
            catch (Exception x) when (x is not OperationCanceledException)
            {
                // Acknowledge failed (connection lost): the broker redelivers after the reconnect.
                instruments.OnDependencyFailure(Dependencies.Broker);
                LogAckFailed(m.Topic, x);
                return;
            }
        }
    }

    /// <inheritdoc />
    public override void Dispose()
    {
        _client.Dispose();
        base.Dispose();
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Connected to the MQTT broker {Host}:{Port} (session present: {SessionPresent})")]
    private partial void LogConnected(string host, int port, bool sessionPresent);

    [LoggerMessage(Level = LogLevel.Error, Message = "Cannot connect to the MQTT broker {Host}:{Port}; retrying in {Backoff}")]
    private partial void LogConnectFailed(string host, int port, TimeSpan backoff, Exception e);

    [LoggerMessage(Level = LogLevel.Warning, Message = "The MQTT broker did not answer a ping")]
    private partial void LogPingFailed();

    [LoggerMessage(Level = LogLevel.Warning, Message = "The MQTT broker says it has no shared subscriptions; several gateways would each get every message")]
    private partial void LogNoSharedSubscriptions();

    [LoggerMessage(Level = LogLevel.Warning, Message = "Message on {Topic} held unacknowledged ({Dependency}); retrying in {Backoff}")]
    private partial void LogRetrying(string topic, TimeSpan backoff, string dependency);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Could not acknowledge the message on {Topic}; the broker will redeliver it")]
    private partial void LogAckFailed(string topic, Exception e);
}
