using System.Net;
using System.Security.Authentication;
using System.Security.Cryptography.X509Certificates;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using MQTTnet;
using MQTTnet.Protocol;
using MQTTnet.Server;
using PumpFleet.Contracts.Hub;
using PumpFleet.Gateway.Hosting;
using PumpFleet.Gateway.Hubs;
using PumpFleet.Gateway.Ingest;
using PumpFleet.Gateway.Protocol;

namespace PumpFleet.Gateway.Mqtt;

/// <summary>
/// Embedded mode: an MQTTnet broker that hubs connect to. MQTTnet awaits <c>InterceptingPublishAsync</c> before it
/// builds the PUBACK, so the PUBACK of an events publish leaves only after the pipeline made the batch durable.
/// When a dependency fails the publish is neither processed nor acknowledged and the hub is disconnected: a PUBACK
/// with an error reason code would complete the QoS 1 exchange and the hub would not resend, whereas a dropped
/// connection makes the hub reconnect and resend everything above its committed seq.
/// </summary>
public sealed partial class EmbeddedBroker(
    IOptions<MqttGatewayOptions> options,
    HubAuthenticator authenticator,
    IServiceProvider services,
    GatewayInstruments instruments,
    TimeProvider time,
    ILogger<EmbeddedBroker> logger) : IHostedService, IHubReplyPublisher, IHubRegistryListener, IAsyncDisposable
{
    /// <summary>Sender id of the platform's own publishes; not a valid hub id, so no hub can pose as it.</summary>
    public const string ServerClientId = "$pumpfleet-gateway";

    private readonly CancellationTokenSource _shutdown = new();
    private readonly InFlightTracker _inFlight = new(instruments);
    private SemaphoreSlim? _slots;
    private MqttServer? _server;
    private IngestPipeline? _pipeline;
    private volatile bool _stopping;
    private FailedLoginLimiter? _failedLogins;
    private Hubs.LoginBackoff? _backoff;
    private HubRateLimiter? _rates;
    // The stored hash each hub's current session authenticated against. Entries are replaced on every accepted
    // connect and never removed on disconnect (a late disconnect event of a replaced connection would otherwise
    // drop the new one's entry); they are bounded by the number of provisioned hubs.
    private readonly System.Collections.Concurrent.ConcurrentDictionary<string, string> _sessionHashes = new(StringComparer.Ordinal);
    private ConnectionGate? _gate;
    // The PUBACK spans (null unless a tracer listens at start: with tracing off MQTTnet gets no outbound interceptor).
    private PubAckTracer? _pubAcks;
    // Refusals over the verification budget since the last log line, and when that line was written (timestamp).
    private static readonly TimeSpan OverBudgetLogInterval = TimeSpan.FromSeconds(10);
    private long _overBudget;
    private long _overBudgetLoggedAt;
    private long _failedChecksAtLastLog;

    /// <summary>Connections accepted and not yet authenticated (MaxUnauthenticatedConnections caps them).</summary>
    public int PendingConnections() => _gate?.Pending ?? 0;

    /// <summary>The running server (null before start).</summary>
    public MqttServer? Server => _server;

    /// <inheritdoc />
    public async Task StartAsync(CancellationToken cancellationToken)
    {
        var o = options.Value;
        _pipeline = services.GetRequiredService<IngestPipeline>();
        _failedLogins = new FailedLoginLimiter(services.GetRequiredService<Quarantine.QuarantineStore>(), instruments, time);
        var auth = services.GetRequiredService<IOptions<HubAuthOptions>>().Value;
        _backoff = new Hubs.LoginBackoff(time, auth.FailureBackoff, auth.FailureBackoffMax, auth.AddressFailureAllowance);
        _rates = new HubRateLimiter(time, o.HubMessagesPerSecond, o.HubMessageBurst);
        _slots = new SemaphoreSlim(o.MaxInFlight, o.MaxInFlight);
        var builder = new MqttServerOptionsBuilder()
            .WithPersistentSessions()
            .WithMaxPendingMessagesPerClient(1000);
        var bind = string.Equals(o.BindAddress, "Any", StringComparison.OrdinalIgnoreCase) ? null : IPAddress.Parse(o.BindAddress);
        if (o.PlainEnabled)
        {
            builder.WithDefaultEndpoint().WithDefaultEndpointPort(o.Port);
            if (bind is not null)
            {
                builder.WithDefaultEndpointBoundIPAddress(bind.AddressFamily == System.Net.Sockets.AddressFamily.InterNetwork ? bind : IPAddress.None)
                       .WithDefaultEndpointBoundIPV6Address(bind.AddressFamily == System.Net.Sockets.AddressFamily.InterNetworkV6 ? bind : IPAddress.None);
            }
        }

        if (!string.IsNullOrEmpty(o.TlsCertificatePath))
        {
            var cert = X509CertificateLoader.LoadPkcs12FromFile(o.TlsCertificatePath, o.TlsCertificatePassword, X509KeyStorageFlags.Exportable);
            builder.WithEncryptedEndpoint().WithEncryptedEndpointPort(o.TlsPort).WithEncryptionCertificate(cert)
                   .WithEncryptionSslProtocol(SslProtocols.Tls12 | SslProtocols.Tls13);
            if (bind is not null)
            {
                builder.WithEncryptedEndpointBoundIPAddress(bind.AddressFamily == System.Net.Sockets.AddressFamily.InterNetwork ? bind : IPAddress.None)
                       .WithEncryptedEndpointBoundIPV6Address(bind.AddressFamily == System.Net.Sockets.AddressFamily.InterNetworkV6 ? bind : IPAddress.None);
            }
        }

        // MQTTnet's own TCP adapter is replaced by one that applies the packet-size and pre-authentication limits
        // before MQTTnet reads anything (GuardedTcpServerAdapter); the log bridge counts MQTTnet's protocol-violation
        // disconnects, which it exposes nowhere else.
        _gate = new ConnectionGate(o.MaxUnauthenticatedConnections);
        var adapter = new GuardedTcpServerAdapter(_gate, o.MaxPacketSize, o.ConnectTimeout, instruments, time, logger);
        var mqttLog = new MqttNetLogBridge(instruments, logger);
        _server = new MqttServerFactory(mqttLog).CreateMqttServer(builder.Build(), [adapter], mqttLog);
        _server.ValidatingConnectionAsync += ValidateConnectionAsync;
        _server.InterceptingPublishAsync += InterceptPublishAsync;
        // A tracer provider is built before the hosted services start (AddServiceDefaults registers it first).
        if (GatewayTracing.Source.HasListeners())
        {
            _pubAcks = new PubAckTracer();
            _server.InterceptingOutboundPacketAsync += _pubAcks.OnOutboundAsync;
        }

        _server.InterceptingSubscriptionAsync += InterceptSubscriptionAsync;
        _server.ClientConnectedAsync += OnConnectedAsync;
        _server.ClientDisconnectedAsync += OnDisconnectedAsync;
        await _server.StartAsync();
        LogStarted(o.PlainEnabled ? o.Port : null, string.IsNullOrEmpty(o.TlsCertificatePath) ? null : o.TlsPort);
    }

    /// <inheritdoc />
    public async Task StopAsync(CancellationToken cancellationToken)
    {
        if (_server is null)
        {
            return;
        }

        // New publishes are turned away (unacknowledged); those in flight get ShutdownDrain to finish. Whatever is
        // still running then is cancelled: its batch is either committed by the grain or not, never half, and it
        // is not acknowledged, so the hub resends it to the next gateway.
        _stopping = true;
        using (var drain = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken))
        {
            drain.CancelAfter(options.Value.ShutdownDrain);
            await _inFlight.WaitIdleAsync(drain.Token).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        }

        var abandoned = _inFlight.Count;
        if (abandoned > 0)
        {
            LogAbandoned(abandoned);
        }

        await _shutdown.CancelAsync();
        await _server.StopAsync();
    }

    /// <inheritdoc />
    public async Task PublishAsync(string topic, byte[] payload, bool retain, CancellationToken ct)
    {
        var server = _server ?? throw new InvalidOperationException("The embedded broker is not running.");
        var message = new MqttApplicationMessageBuilder().WithTopic(topic).WithPayload(payload)
            .WithQualityOfServiceLevel(MqttQualityOfServiceLevel.AtLeastOnce).WithRetainFlag(retain)
            .WithContentType("application/json").Build();
        await server.InjectApplicationMessage(new InjectedMqttApplicationMessage(message) { SenderClientId = ServerClientId }, ct);
    }

    private async Task ValidateConnectionAsync(ValidatingConnectionEventArgs e)
    {
        var connection = _gate!.Find(e.ChannelAdapter);
        if (connection?.Admission == Admission.Refused)
        {
            // Over MaxUnauthenticatedConnections when it was accepted (already counted and logged): no database read, no PBKDF2.
            e.ReasonCode = MqttConnectReasonCode.ServerBusy;
            e.ReasonString = "Too many connections are waiting for authentication; retry later.";
            return;
        }

        await ValidateCredentialsAsync(e);
        if (e.ReasonCode == MqttConnectReasonCode.Success && connection is not null)
        {
            connection.HubId = e.ClientId;
            _gate.Authenticated(connection);
        }
    }

    private async Task ValidateCredentialsAsync(ValidatingConnectionEventArgs e)
    {
        var address = (e.RemoteEndPoint as IPEndPoint)?.Address.ToString();
        var backoff = _backoff!;
        // A hub presenting a password this instance verified before is proven: a flood of failures against its own
        // hub id or from its NAT address must not lock it out (the registry row is still read below).
        var proven = e.ClientId is not null && authenticator.IsProven(e.ClientId, e.Password);
        if (!proven && backoff.BlockedUntil(e.ClientId ?? "", address) is { } until)
        {
            // Refused before any database read or PBKDF2: a password flood costs next to nothing.
            e.ReasonCode = MqttConnectReasonCode.ConnectionRateExceeded;
            e.ReasonString = $"Too many failed logins; retry after {until:O}.";
            instruments.OnMessage(MessageResults.Refused, 0, TimeSpan.Zero);
            instruments.OnLoginThrottled(LoginThrottleReasons.Backoff);
            return;
        }

        if (e.ClientId != e.UserName || !HubTopics.IsValidId(e.ClientId))
        {
            e.ReasonCode = MqttConnectReasonCode.ClientIdentifierNotValid;
            e.ReasonString = "The client id must equal the user name, a hub id matching ^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$.";
            backoff.Failed(e.ClientId ?? "", address);
            await _failedLogins!.RecordAsync(e.ClientId ?? "", RejectCodes.InvalidClientId, e.ReasonString, _shutdown.Token);
            return;
        }

        try
        {
            var outcome = await authenticator.VerifyAsync(e.ClientId, e.Password, _shutdown.Token);
            var result = outcome.Result;
            if (result == HubAuthResult.Busy)
            {
                e.ReasonCode = MqttConnectReasonCode.ServerBusy;
                return;
            }

            if (result == HubAuthResult.OverBudget)
            {
                // Not a failure of this hub (it may be honest and cold): no backoff, no quarantine row; counted, and
                // logged at most once per interval with the number refused since.
                e.ReasonCode = MqttConnectReasonCode.ServerBusy;
                e.ReasonString = "Too many unverified logins at this gateway right now; retry in a few seconds.";
                instruments.OnMessage(MessageResults.Refused, 0, TimeSpan.Zero);
                instruments.OnLoginThrottled(LoginThrottleReasons.VerificationBudget);
                NoteOverBudget();
                return;
            }

            if (result == HubAuthResult.Accepted)
            {
                backoff.Succeeded(e.ClientId, address);
                if (outcome.SecretHash is not null)
                {
                    _sessionHashes[e.ClientId] = outcome.SecretHash;
                }
            }
            else
            {
                backoff.Failed(e.ClientId, address);
                e.ReasonCode = MqttConnectReasonCode.BadUserNameOrPassword;
                LogBadCredentials(e.ClientId);
                await _failedLogins!.RecordAsync(e.ClientId, RejectCodes.BadCredentials,
                    $"Hub '{e.ClientId}' is unknown or revoked, or its password is wrong.", _shutdown.Token);
            }
        }
        catch (Exception x) when (x is not OperationCanceledException)
        {
            // The credential store is down: the hub retries later, nothing was accepted.
            e.ReasonCode = MqttConnectReasonCode.ServerUnavailable;
            instruments.OnDependencyFailure(Dependencies.PostgreSql);
            LogAuthUnavailable(e.ClientId, x);
        }
    }

    private void NoteOverBudget()
    {
        Interlocked.Increment(ref _overBudget);
        var now = time.GetTimestamp();
        var last = Interlocked.Read(ref _overBudgetLoggedAt);
        if ((last != 0 && time.GetElapsedTime(last, now) < OverBudgetLogInterval) || Interlocked.CompareExchange(ref _overBudgetLoggedAt, now, last) != last)
        {
            return;
        }

        // The budget runs out both when passwords fail (a flood) and when many honest, not yet verified hubs connect
        // at once (a gateway restart): the failed checks since the last line tell which, and only a flood warns.
        var auth = services.GetRequiredService<IOptions<HubAuthOptions>>().Value;
        var failedTotal = authenticator.FailedChecks;
        var failed = failedTotal - Interlocked.Exchange(ref _failedChecksAtLastLog, failedTotal);
        var refused = Interlocked.Exchange(ref _overBudget, 0);
        if (failed > 0)
        {
            LogOverBudgetFlood(refused, failed, auth.VerificationBudgetPerSecond, OverBudgetLogInterval);
        }
        else
        {
            LogOverBudgetBusy(refused, auth.VerificationBudgetBurst, OverBudgetLogInterval);
        }
    }

    private async Task InterceptPublishAsync(InterceptingPublishEventArgs e)
    {
        if (e.ClientId == ServerClientId)
        {
            return; // the platform's own ack and rejects
        }

        using var receive = GatewayTracing.StartReceive(e.ClientId, e.ApplicationMessage.Topic, e.ApplicationMessage.UserProperties);
        await ProcessPublishAsync(e);
        if (receive is { Recorded: true } && _pubAcks is { } pubAcks && !e.CloseConnection
            && e.ApplicationMessage.QualityOfServiceLevel == MqttQualityOfServiceLevel.AtLeastOnce)
        {
            pubAcks.Expect(e.ClientId, receive); // MQTTnet sends the PUBACK after this returns
        }
    }

    private async Task ProcessPublishAsync(InterceptingPublishEventArgs e)
    {
        var topic = e.ApplicationMessage.Topic;
        var parsed = HubTopics.Parse(topic);
        var isStatus = parsed.Kind == HubTopicKind.Status && parsed.HubId == e.ClientId;
        if (_stopping)
        {
            Abandon(e, DisconnectReasons.Shutdown, "the gateway is shutting down");
            return;
        }

        if (!isStatus && !_rates!.TryTake(e.ClientId))
        {
            Abandon(e, DisconnectReasons.RateLimited, $"more than {options.Value.HubMessagesPerSecond} messages a second (burst {options.Value.HubMessageBurst})");
            return;
        }

        var pipeline = _pipeline!;
        if (!await TryTakeSlotAsync())
        {
            // Backpressure: every slot is busy for longer than InFlightWait (the grains or the database are slow).
            Abandon(e, DisconnectReasons.Backpressure, $"no in-flight slot within {options.Value.InFlightWait}");
            return;
        }

        _inFlight.Enter();
        try
        {
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(_shutdown.Token, e.CancellationToken);
            timeout.CancelAfter(options.Value.IngestTimeout);
            var payload = System.Buffers.BuffersExtensions.ToArray(e.ApplicationMessage.Payload);
            var report = await pipeline.ProcessAsync(new InboundMessage(e.ClientId, topic, payload, time.GetUtcNow()), timeout.Token);
            if (isStatus)
            {
                return; // routed normally so the retained status (and the last will) reach subscribers
            }

            e.ProcessPublish = false; // events are not routed to subscribers; they went to the grain
            e.Response.ReasonCode = report.Outcome switch
            {
                IngestOutcome.Accepted => MqttPubAckReasonCode.Success,
                IngestOutcome.Refused => MqttPubAckReasonCode.NotAuthorized,
                _ => MqttPubAckReasonCode.PayloadFormatInvalid,
            };
            if (report.Rejects.Count > 0)
            {
                e.Response.ReasonString = $"{report.Rejects[0].Code}: see the rejects topic";
            }
        }
        catch (DependencyUnavailableException x)
        {
            Abandon(e, DisconnectReasons.DependencyUnavailable, x.Message);
        }
        catch (OperationCanceledException x)
        {
            Abandon(e, _shutdown.IsCancellationRequested ? DisconnectReasons.Shutdown : DisconnectReasons.IngestTimeout, x.Message);
        }
        catch (Exception x) when (x is not OutOfMemoryException)
        {
            // UnexpectedFailureException below the poison threshold (the pipeline turns every other exception into
            // an answer or into that): not acknowledged, the hub resends and the next attempt counts towards it.
            Abandon(e, DisconnectReasons.UnexpectedFailure, x.Message);
        }
        finally
        {
            _inFlight.Exit();
            _slots!.Release();
        }
    }

    private async Task<bool> TryTakeSlotAsync()
    {
        try
        {
            return await _slots!.WaitAsync(options.Value.InFlightWait, _shutdown.Token);
        }
        catch (OperationCanceledException)
        {
            return false;
        }
    }

    private void Abandon(InterceptingPublishEventArgs e, string reason, string detail)
    {
        // No PUBACK: MQTTnet closes the connection before it would send one. Every such close is logged and counted.
        e.ProcessPublish = false;
        e.CloseConnection = true;
        instruments.OnDisconnect(reason);
        LogNotAcknowledged(e.ClientId, e.ApplicationMessage.Topic, reason, detail);
    }

    /// <summary>
    /// Ends the sessions of hubs that were revoked, and of hubs whose secret was rotated since their session
    /// authenticated (a hub that already reconnected with the new secret keeps its session). The hub cannot
    /// reconnect with what it had: every connect reads the registry.
    /// </summary>
    public async Task OnHubsChangedAsync(IReadOnlyCollection<string>? hubIds, CancellationToken ct)
    {
        var server = _server;
        if (server is null)
        {
            return;
        }

        var connected = (await server.GetClientsAsync())
            .Where(c => c.Id != ServerClientId && (hubIds is null || hubIds.Contains(c.Id)))
            .ToList();
        if (connected.Count == 0)
        {
            return;
        }

        var current = await services.GetRequiredService<HubStore>().ActiveSecretHashesAsync([.. connected.Select(c => c.Id).Distinct()], ct);
        foreach (var client in connected)
        {
            string reason;
            if (!current.TryGetValue(client.Id, out var hash))
            {
                reason = DisconnectReasons.Revoked; // revoked (or its row is gone): the credential is no longer valid
            }
            else if (_sessionHashes.TryGetValue(client.Id, out var used) && used != hash)
            {
                reason = DisconnectReasons.Rotated;
            }
            else
            {
                continue;
            }

            instruments.OnDisconnect(reason);
            LogCredentialDisconnect(client.Id, reason);
            try
            {
                await client.DisconnectAsync(new MqttServerClientDisconnectOptions
                {
                    ReasonCode = MqttDisconnectReasonCode.NotAuthorized,
                    ReasonString = reason == DisconnectReasons.Revoked ? "The hub was revoked." : "The hub's secret was rotated; connect with the new one.",
                });
            }
            catch (Exception x) when (x is not OutOfMemoryException)
            {
                // The connection went away by itself meanwhile: nothing left to end.
                LogDisconnectFailed(client.Id, x);
            }
        }
    }

    private Task InterceptSubscriptionAsync(InterceptingSubscriptionEventArgs e)
    {
        // A hub may read only its own subtree (ack, rejects, status); never another hub's, never $share or '#'.
        if (!e.TopicFilter.Topic.StartsWith($"{HubTopics.Prefix}{e.ClientId}/", StringComparison.Ordinal))
        {
            e.Response.ReasonCode = MqttSubscribeReasonCode.NotAuthorized;
        }

        return Task.CompletedTask;
    }

    private async Task OnConnectedAsync(ClientConnectedEventArgs e) => await TrySetStatusAsync(e.ClientId, online: true);

    private async Task OnDisconnectedAsync(ClientDisconnectedEventArgs e)
    {
        _pubAcks?.Forget(e.ClientId);
        await TrySetStatusAsync(e.ClientId, online: false);
    }

    private async Task TrySetStatusAsync(string hubId, bool online)
    {
        if (_pipeline is null || !HubTopics.IsValidId(hubId))
        {
            return;
        }

        try
        {
            await _pipeline.SetHubStatusAsync(hubId, online, null, null, time.GetUtcNow(), _shutdown.Token, fromConnection: true);
        }
        catch (Exception x) when (x is DependencyUnavailableException or OperationCanceledException)
        {
            // Already counted and logged by the pipeline (as a status not recorded); the last-seen tracker still advances the
            // hub's last-seen time with its messages, and its next connection event or status message sets the flag.
        }
    }

    /// <inheritdoc />
    public async ValueTask DisposeAsync()
    {
        _server?.Dispose();
        _slots?.Dispose();
        _shutdown.Dispose();
        await ValueTask.CompletedTask;
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Hub {HubId} disconnected: its credential is no longer valid ({Reason})")]
    private partial void LogCredentialDisconnect(string hubId, string reason);

    [LoggerMessage(Level = LogLevel.Debug, Message = "Disconnecting hub {HubId} failed (already gone)")]
    private partial void LogDisconnectFailed(string hubId, Exception e);

    [LoggerMessage(Level = LogLevel.Information, Message = "Embedded MQTT broker listening (plain port {Port}, TLS port {TlsPort})")]
    private partial void LogStarted(int? port, int? tlsPort);

    [LoggerMessage(Level = LogLevel.Warning, Message = "{Count} connection attempt(s) refused ServerBusy without a credential check after {Failed} failed check(s): the budget of failed checks ({PerSecond}/s) is exhausted, a wrong-password flood is likely (at most one such line per {Interval})")]
    private partial void LogOverBudgetFlood(long count, long failed, double perSecond, TimeSpan interval);

    [LoggerMessage(Level = LogLevel.Information, Message = "{Count} connection attempt(s) told ServerBusy to retry: {Burst} unverified logins were already being checked and none failed (many hubs connecting at once; at most one such line per {Interval})")]
    private partial void LogOverBudgetBusy(long count, double burst, TimeSpan interval);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Hub {HubId} failed to authenticate")]
    private partial void LogBadCredentials(string hubId);

    [LoggerMessage(Level = LogLevel.Error, Message = "Cannot check the credentials of hub {HubId}: the credential store is unavailable")]
    private partial void LogAuthUnavailable(string hubId, Exception e);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Publish of hub {HubId} on {Topic} not acknowledged, hub disconnected so it resends ({Reason}): {Detail}")]
    private partial void LogNotAcknowledged(string hubId, string topic, string reason, string detail);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Shutdown: {Count} in-flight messages abandoned unacknowledged; their hubs will resend")]
    private partial void LogAbandoned(int count);
}
