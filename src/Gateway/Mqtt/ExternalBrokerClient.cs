using System.Threading.Channels;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using MQTTnet;
using MQTTnet.Protocol;
using PumpFleet.Contracts.Hub;
using PumpFleet.Gateway.Hosting;
using PumpFleet.Gateway.Hubs;
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
        var registry = services.GetRequiredService<HubRegistryWatcher>();
        // The revoked set must be loaded before the first message is judged (it is refused even when the broker's
        // files still let the hub in).
        await registry.WaitReadyAsync(stoppingToken);
        _partitions = [.. Enumerable.Range(0, o.External.Partitions).Select(_ =>
            Channel.CreateUnbounded<MqttApplicationMessageReceivedEventArgs>(new UnboundedChannelOptions { SingleReader = true }))];
        var workers = _partitions.Select(p => Task.Run(() => WorkAsync(p.Reader, pipeline, registry, stoppingToken), CancellationToken.None)).ToArray();

        _client.ApplicationMessageReceivedAsync += e =>
        {
            // Return at once: acknowledging is the worker's job, after durable storage. The channel cannot fill
            // beyond ReceiveMaximum because the broker sends no more unacked messages than that.
            e.AutoAcknowledge = false;
            int index;
            try
            {
                var topic = HubTopics.Parse(e.ApplicationMessage.Topic);
                var key = topic.Serial ?? topic.HubId;
                index = (int)((uint)StringComparer.Ordinal.GetHashCode(key) % (uint)_partitions.Length);
            }
            catch (Exception x) when (x is not OutOfMemoryException)
            {
                // Whatever it is, the message must reach a worker, which answers or retries it; never left unacked here.
                LogUnexpected(e.ApplicationMessage.Topic, "partitioning", x);
                index = 0;
            }

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

    private async Task WorkAsync(ChannelReader<MqttApplicationMessageReceivedEventArgs> reader, IngestPipeline pipeline, HubRegistryWatcher registry,
        CancellationToken ct)
    {
        await foreach (var e in reader.ReadAllAsync(CancellationToken.None))
        {
            try
            {
                if (!ct.IsCancellationRequested)
                {
                    await HandleAsync(e, pipeline, registry, ct);
                }
            }
            finally
            {
                _inFlight.Exit();
            }
        }
    }

    /// <summary>
    /// One message, whatever happens: an exception outside the pipeline's own handling (a bug in this client) is
    /// retried in place like an unexpected failure and, at <c>PoisonThreshold</c>, the message is acknowledged and
    /// logged as poison. It is never left unacknowledged until a reconnect, and it never ends the worker (which would
    /// strand every later message of its partition).
    /// </summary>
    private async Task HandleAsync(MqttApplicationMessageReceivedEventArgs e, IngestPipeline pipeline, HubRegistryWatcher registry, CancellationToken ct)
    {
        var threshold = options.Value.PoisonThreshold;
        var backoff = TimeSpan.FromMilliseconds(200);
        for (var attempt = 1; !ct.IsCancellationRequested; attempt++)
        {
            try
            {
                await ProcessWithRetryAsync(e, pipeline, registry, ct);
                return;
            }
            catch (OperationCanceledException) when (ct.IsCancellationRequested)
            {
                return;
            }
            catch (Exception x) when (x is not OutOfMemoryException)
            {
                instruments.OnUnexpectedFailure(poisoned: attempt >= threshold);
                LogUnexpected(e.ApplicationMessage.Topic, $"attempt {attempt} of {threshold}", x);
                if (attempt >= threshold)
                {
                    await AcknowledgeAsync(e, ct);
                    return;
                }

                await Task.Delay(backoff, time, ct).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
                backoff = TimeSpan.FromTicks(Math.Min(backoff.Ticks * 2, MaxBackoff.Ticks));
            }
        }
    }

    private async Task ProcessWithRetryAsync(MqttApplicationMessageReceivedEventArgs e, IngestPipeline pipeline, HubRegistryWatcher registry, CancellationToken ct)
    {
        var m = e.ApplicationMessage;
        var topic = HubTopics.Parse(m.Topic);
        using var receive = GatewayTracing.StartReceive(topic.HubId, m.Topic, m.UserProperties);
        // The hub id is the user the broker authenticated: MQTT 5 does not tell a subscriber who published, but the
        // ACL that `hubs mosquitto-files` generates (%u patterns) lets a user publish only under its own hub id, so
        // the topic's hub id is the publisher's identity. The pipeline still checks pairing.
        var inbound = new InboundMessage(topic.HubId, m.Topic, System.Buffers.BuffersExtensions.ToArray(m.Payload), time.GetUtcNow(), e.PacketIdentifier.ToString(System.Globalization.CultureInfo.InvariantCulture));
        var backoff = TimeSpan.FromMilliseconds(200);
        while (!ct.IsCancellationRequested)
        {
            try
            {
                if (registry.IsRevoked(topic.HubId))
                {
                    // Revoked in the registry: refused at once, even if the broker has not reloaded its files yet.
                    await pipeline.RefuseRevokedAsync(inbound, ct);
                }
                else
                {
                    await pipeline.ProcessAsync(inbound, ct);
                }

                break;
            }
            catch (OperationCanceledException) when (ct.IsCancellationRequested)
            {
                return;
            }
            catch (Exception x) when (x is not OutOfMemoryException)
            {
                // A dependency failure, the reorder window, or an unexpected failure below the poison threshold
                // (the pipeline answers everything else): held unacknowledged and retried here, in order. A dependency
                // outage is retried for as long as it lasts; an unexpected failure becomes poison at the threshold.
                // If this instance dies meanwhile, the broker redelivers the message from the persistent session.
                var why = x switch
                {
                    DependencyUnavailableException d => d.Dependency,
                    RetryLaterException => "ordering",
                    UnexpectedFailureException => "unexpected-failure",
                    _ => x.GetType().Name,
                };
                LogRetrying(m.Topic, backoff, why);
                await Task.Delay(backoff, time, ct).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
                backoff = TimeSpan.FromTicks(Math.Min(backoff.Ticks * 2, MaxBackoff.Ticks));
            }
        }

        if (ct.IsCancellationRequested)
        {
            return;
        }

        await AcknowledgeAsync(e, ct);
    }

    private async Task AcknowledgeAsync(MqttApplicationMessageReceivedEventArgs e, CancellationToken ct)
    {
        try
        {
            await e.AcknowledgeAsync(ct);
        }
        catch (Exception x) when (x is not OutOfMemoryException)
        {
            // Acknowledge failed (connection lost): the broker redelivers after the reconnect; the grain deduplicates.
            instruments.OnDependencyFailure(Dependencies.Broker);
            LogAckFailed(e.ApplicationMessage.Topic, x);
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

    [LoggerMessage(Level = LogLevel.Error, Message = "Unexpected failure handling the message on {Topic} ({Stage}); it is retried, and acknowledged as poison at the threshold")]
    private partial void LogUnexpected(string topic, string stage, Exception e);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Could not acknowledge the message on {Topic}; the broker will redeliver it")]
    private partial void LogAckFailed(string topic, Exception e);
}
