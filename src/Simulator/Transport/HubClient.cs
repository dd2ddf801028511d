using System.Buffers;
using System.Text;
using System.Threading.Channels;
using Microsoft.Extensions.Logging;
using MQTTnet;
using MQTTnet.Protocol;
using PumpFleet.Contracts.Events;
using PumpFleet.Simulator.Generation;
using PumpFleet.Simulator.Time;
using PumpFleet.Simulator.Wire;

namespace PumpFleet.Simulator.Transport;

/// <summary>
/// One bedside hub on MQTT. Every event stays queued until an ack's <c>committedSeq</c> (the contiguous watermark)
/// covers it; after any (re)connect the hub first waits briefly for the retained acks, then resends what is above
/// <c>committedSeq</c> except what the ack's <c>highestSeq</c> and <c>missing</c> say is stored, device first.
/// Commands (batches, outages) are processed in order by one worker per hub.
/// </summary>
public sealed partial class HubClient : IAsyncDisposable
{
    private static readonly TimeSpan RetainedAckWait = TimeSpan.FromSeconds(2);
    private static readonly TimeSpan MaxBackoff = TimeSpan.FromSeconds(5);

    private readonly HubProfile _hub;
    private volatile IMqttClient _client;
    private readonly MqttClientOptions _mqttOptions;
    private readonly ISimulationClock _clock;
    private readonly TimeProvider _time;
    private readonly SimulatorStats _stats;
    private readonly ILogger _log;
    private readonly PumpQueue[] _pumps;
    private readonly Dictionary<string, PumpQueue> _bySerial = new(StringComparer.Ordinal);
    private readonly SemaphoreSlim _sendLock = new(1, 1);

    /// <summary>Busy refusals in a row that are logged as information before they become warnings.</summary>
    private const int DeferredConnectsBeforeWarning = 10;

    /// <summary>Busy refusals since the last successful connect (touched only under the send lock).</summary>
    private int _deferredConnects;
    private TaskCompletionSource _ackSignal = NewSignal();
    private readonly Channel<object> _commands = Channel.CreateBounded<object>(new BoundedChannelOptions(64) { SingleReader = true });
    private readonly CancellationTokenSource _stopping = new();
    private Task? _worker;
    private int _reconnecting;
    private volatile bool _wantOnline;

    /// <summary>Creates the hub client; nothing connects until <see cref="StartAsync"/>.</summary>
    public HubClient(HubProfile hub, SimulatorOptions options, string secret, ISimulationClock clock, TimeProvider time, SimulatorStats stats, ILogger log)
    {
        _hub = hub;
        _clock = clock;
        _time = time;
        _stats = stats;
        _log = log;
        _pumps = [.. hub.Pumps.Select(p => new PumpQueue(p.Serial, p.Device))];
        foreach (var p in _pumps)
        {
            _bySerial[p.Serial] = p;
        }

        _mqttOptions = new MqttClientOptionsBuilder()
            .WithTcpServer(options.BrokerHost, options.BrokerPort)
            .WithClientId(hub.HubId)
            .WithCredentials(hub.HubId, secret)
            .WithCleanStart(true)
            .WithKeepAlivePeriod(TimeSpan.FromSeconds(30))
            .WithTimeout(TimeSpan.FromSeconds(10))
            .WithWillTopic(Topics.Status(hub.HubId))
            .WithWillPayload(WireJson.LastWill)
            .WithWillRetain(true)
            .WithWillQualityOfServiceLevel(MqttQualityOfServiceLevel.AtLeastOnce)
            .Build();
        _client = CreateClient();
    }

    private IMqttClient CreateClient()
    {
        var client = new MqttClientFactory().CreateMqttClient();
        client.ApplicationMessageReceivedAsync += OnMessageAsync;
        client.DisconnectedAsync += OnDisconnectedAsync;
        return client;
    }

    /// <summary>Hub id.</summary>
    public string HubId => _hub.HubId;

    /// <summary>Whether the MQTT connection is up.</summary>
    public bool IsConnected => _client.IsConnected;

    /// <summary>Events not yet covered by an ack.</summary>
    public int Backlog
    {
        get
        {
            var n = 0;
            foreach (var p in _pumps)
            {
                lock (p)
                {
                    n += p.Unacked.Count;
                }
            }

            return n;
        }
    }

    /// <summary>The highest committedSeq received for a pump (0 before any ack).</summary>
    public long CommittedSeq(string serial)
    {
        var p = _bySerial[serial];
        lock (p)
        {
            return p.Committed;
        }
    }

    /// <summary>Connects (returns false when the broker refused or could not be reached; a reconnect loop then keeps trying) and starts the worker.</summary>
    public async Task<bool> StartAsync(CancellationToken cancellationToken)
    {
        _wantOnline = true;
        _worker = Task.Run(() => WorkAsync(_stopping.Token), CancellationToken.None);
        var ok = await TryConnectAsync(cancellationToken);
        if (!ok)
        {
            StartReconnectLoop();
        }

        return ok;
    }

    /// <summary>Queues a batch from the generator: its events join the backlog and are published when connected.</summary>
    public ValueTask PostAsync(PumpBatch batch, CancellationToken cancellationToken) => _commands.Writer.WriteAsync(batch, cancellationToken);

    /// <summary>Queues an outage start or end.</summary>
    public ValueTask PostAsync(HubConnectivityChanged change, CancellationToken cancellationToken) => _commands.Writer.WriteAsync(change, cancellationToken);

    /// <summary>Waits until every queued command ran.</summary>
    public async Task CompleteAsync()
    {
        _commands.Writer.TryComplete();
        if (_worker is not null)
        {
            // The worker runs on the thread pool; there is no synchronisation context to deadlock on.
#pragma warning disable VSTHRD003
            await _worker;
#pragma warning restore VSTHRD003
        }
    }

    /// <summary>Publishes the offline status and disconnects cleanly.</summary>
    public async Task StopAsync()
    {
        _wantOnline = false;
        if (_client.IsConnected)
        {
            try
            {
                await PublishAsync(Topics.Status(HubId), WireJson.Status(false, null, _clock.Now), retain: true, CancellationToken.None);
                await _client.DisconnectAsync(new MqttClientDisconnectOptionsBuilder().WithReason(MqttClientDisconnectOptionsReason.NormalDisconnection).Build());
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                Log.StopFailed(_log, HubId, e.Message);
            }
        }
    }

    private async Task WorkAsync(CancellationToken cancellationToken)
    {
        try
        {
            await ProcessCommandsAsync(cancellationToken);
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            // Close the queue with the error, so the runner fails loudly instead of waiting on a full queue forever.
            Log.WorkerFailed(_log, HubId, e);
            _commands.Writer.TryComplete(e);
            throw;
        }
    }

    private async Task ProcessCommandsAsync(CancellationToken cancellationToken)
    {
        await foreach (var command in _commands.Reader.ReadAllAsync(cancellationToken))
        {
            switch (command)
            {
                case PumpBatch batch:
                    var p = _bySerial[batch.Serial];
                    lock (p)
                    {
                        foreach (var e in batch.Events)
                        {
                            p.Unacked.Add(new QueuedEvent(e.Event.Seq, e.Json));
                        }
                    }

                    if (_client.IsConnected)
                    {
                        await FlushAsync(cancellationToken);
                    }

                    break;
                case HubConnectivityChanged { Online: false }:
                    Log.GoingOffline(_log, HubId, _clock.Now);
                    await DropLinkAsync(cancellationToken);
                    break;
                case HubConnectivityChanged { Online: true }:
                    _wantOnline = true;
                    Log.ComingOnline(_log, HubId, _clock.Now);
                    if (!await TryConnectAsync(cancellationToken))
                    {
                        StartReconnectLoop();
                    }

                    break;
            }
        }
    }

    /// <summary>
    /// A simulated outage is a lost link, not a polite goodbye: the client is dropped without DISCONNECT, so the
    /// broker publishes the last will, as it would when a hub loses power or network.
    /// </summary>
    private async Task DropLinkAsync(CancellationToken cancellationToken)
    {
        await _sendLock.WaitAsync(cancellationToken);
        try
        {
            _wantOnline = false;
            var old = _client;
            old.ApplicationMessageReceivedAsync -= OnMessageAsync;
            old.DisconnectedAsync -= OnDisconnectedAsync;
            _client = CreateClient();
            old.Dispose();
        }
        finally
        {
            _sendLock.Release();
        }
    }

    /// <summary>Refusals that mean "come back later", not "you are not welcome".</summary>
    private static bool IsTransient(MqttClientConnectResultCode code) => code is MqttClientConnectResultCode.ServerBusy
        or MqttClientConnectResultCode.ServerUnavailable or MqttClientConnectResultCode.ConnectionRateExceeded
        or MqttClientConnectResultCode.QuotaExceeded;

    /// <summary>
    /// Connects, subscribes, announces the hub, learns committedSeq from the retained acks and resends what is above
    /// it. Holds the send lock throughout, so no new batch overtakes the resend.
    /// </summary>
    private async Task<bool> TryConnectAsync(CancellationToken cancellationToken)
    {
        await _sendLock.WaitAsync(cancellationToken);
        try
        {
            if (_client.IsConnected)
            {
                return true;
            }

            foreach (var p in _pumps)
            {
                lock (p)
                {
                    p.AckSinceConnect = false;
                    p.DeviceSent = false;
                }
            }

            var result = await _client.ConnectAsync(_mqttOptions, cancellationToken);
            if (result.ResultCode != MqttClientConnectResultCode.Success)
            {
                if (IsTransient(result.ResultCode) && ++_deferredConnects <= DeferredConnectsBeforeWarning)
                {
                    Log.ConnectDeferred(_log, HubId, result.ResultCode.ToString());
                }
                else
                {
                    Log.ConnectRefused(_log, HubId, result.ResultCode.ToString());
                }

                return false;
            }

            _deferredConnects = 0;

            await _client.SubscribeAsync(new MqttClientSubscribeOptionsBuilder()
                .WithTopicFilter(Topics.AckFilter(HubId), MqttQualityOfServiceLevel.AtLeastOnce)
                .WithTopicFilter(Topics.RejectsFilter(HubId), MqttQualityOfServiceLevel.AtLeastOnce)
                .Build(), cancellationToken);
            await PublishAsync(Topics.Status(HubId), WireJson.Status(true, _hub.Firmware, _clock.Now), retain: true, cancellationToken);
            await WaitForRetainedAcksAsync(cancellationToken);
            foreach (var p in _pumps)
            {
                lock (p)
                {
                    p.SentUpTo = p.Committed;
                }
            }

            await FlushCoreAsync(cancellationToken);
            return true;
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            Log.ConnectFailed(_log, HubId, e.Message);
            return false;
        }
        finally
        {
            _sendLock.Release();
        }
    }

    /// <summary>
    /// Pumps that were acked before have a retained ack waiting on the broker; resending before it arrives would
    /// resend events the platform already holds. Waits for those acks, at most <see cref="RetainedAckWait"/>.
    /// </summary>
    private async Task WaitForRetainedAcksAsync(CancellationToken cancellationToken)
    {
        var started = _time.GetTimestamp();
        while (true)
        {
            var signal = Volatile.Read(ref _ackSignal);
            var waiting = false;
            foreach (var p in _pumps)
            {
                lock (p)
                {
                    waiting |= p.Unacked.Count > 0 && p.Committed > 0 && !p.AckSinceConnect;
                }
            }

            var left = RetainedAckWait - _time.GetElapsedTime(started);
            if (!waiting || left <= TimeSpan.Zero)
            {
                return;
            }

            try
            {
                await signal.Task.WaitAsync(left, _time, cancellationToken);
            }
            catch (TimeoutException)
            {
                return;
            }
        }
    }

    /// <summary>Publishes every queued event above what this connection has already sent, in batches of at most 500.</summary>
    private async Task FlushAsync(CancellationToken cancellationToken)
    {
        await _sendLock.WaitAsync(cancellationToken);
        try
        {
            await FlushCoreAsync(cancellationToken);
        }
        finally
        {
            _sendLock.Release();
        }
    }

    private async Task FlushCoreAsync(CancellationToken cancellationToken)
    {
        foreach (var p in _pumps)
        {
            while (_client.IsConnected)
            {
                List<QueuedEvent> chunk;
                DeviceInfo? device;
                long attemptedBefore;
                lock (p)
                {
                    chunk = p.NextChunk();
                    device = p.DeviceSent ? null : p.Device;
                    attemptedBefore = p.MaxAttempted;
                    if (chunk.Count > 0)
                    {
                        p.MaxAttempted = Math.Max(p.MaxAttempted, chunk[^1].Seq);
                    }
                }

                if (chunk.Count == 0)
                {
                    break;
                }

                var payload = WireJson.Batch(device, chunk.Select(e => e.Json));
                if (!await PublishAsync(Topics.Events(HubId, p.Serial), payload, retain: false, cancellationToken))
                {
                    _stats.OnPublishFailed();
                    return;
                }

                // Resent = published although an earlier attempt (acked by the broker or not) carried it.
                _stats.OnPublished(chunk.Count, chunk.Count(e => e.Seq <= attemptedBefore));
                lock (p)
                {
                    p.SentUpTo = chunk[^1].Seq;
                    p.DeviceSent = true;
                }
            }
        }
    }

    private async Task<bool> PublishAsync(string topic, string payload, bool retain, CancellationToken cancellationToken)
    {
        try
        {
            var message = new MqttApplicationMessageBuilder()
                .WithTopic(topic)
                .WithPayload(payload)
                .WithQualityOfServiceLevel(MqttQualityOfServiceLevel.AtLeastOnce)
                .WithRetainFlag(retain)
                .Build();
            var result = await _client.PublishAsync(message, cancellationToken);
            if (!result.IsSuccess)
            {
                Log.PublishRefused(_log, HubId, topic, result.ReasonCode.ToString());
            }

            return result.IsSuccess;
        }
        catch (Exception e) when (e is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
        {
            Log.PublishFailed(_log, HubId, topic, e.Message);
            return false;
        }
    }

    private Task OnMessageAsync(MqttApplicationMessageReceivedEventArgs e)
    {
        var topic = e.ApplicationMessage.Topic;
        var serial = Topics.SerialOf(topic);
        if (serial is null || !_bySerial.TryGetValue(serial, out var p))
        {
            return Task.CompletedTask;
        }

        if (topic.EndsWith("/ack", StringComparison.Ordinal))
        {
            var payload = e.ApplicationMessage.Payload;
            var ack = WireJson.ParseAck(payload.IsSingleSegment ? payload.FirstSpan : payload.ToArray());
            if (ack is not null)
            {
                var c = ack.CommittedSeq;
                _stats.OnAck();
                lock (p)
                {
                    // committedSeq is the contiguous watermark: only what it covers may be forgotten.
                    p.AckSinceConnect = true;
                    if (c >= p.Committed)
                    {
                        p.LastAck = ack;
                    }

                    if (c > p.Committed)
                    {
                        p.Committed = c;
                        p.Unacked.RemoveRange(0, p.FirstAbove(c));
                    }
                }

                Interlocked.Exchange(ref _ackSignal, NewSignal()).TrySetResult();
            }
        }
        else if (topic.EndsWith("/rejects", StringComparison.Ordinal))
        {
            _stats.OnReject();
            Log.Rejected(_log, HubId, serial, e.ApplicationMessage.ConvertPayloadToString());
        }

        return Task.CompletedTask;
    }

    private Task OnDisconnectedAsync(MqttClientDisconnectedEventArgs e)
    {
        if (_wantOnline && !_stopping.IsCancellationRequested)
        {
            // A failed connect attempt also lands here; only a lost connection is worth an information line.
            if (e.ClientWasConnected)
            {
                Log.ConnectionLost(_log, HubId, e.Reason.ToString());
            }

            StartReconnectLoop();
        }

        return Task.CompletedTask;
    }

    private void StartReconnectLoop()
    {
        if (Interlocked.Exchange(ref _reconnecting, 1) == 1)
        {
            return;
        }

        _ = Task.Run(async () =>
        {
            var backoff = TimeSpan.FromMilliseconds(100);
            try
            {
                while (_wantOnline && !_stopping.IsCancellationRequested && !_client.IsConnected)
                {
                    await Task.Delay(backoff, _time, _stopping.Token);
                    if (await TryConnectAsync(_stopping.Token))
                    {
                        _stats.OnReconnect();
                        Log.Reconnected(_log, HubId);
                        break;
                    }

                    backoff = TimeSpan.FromTicks(Math.Min(backoff.Ticks * 2, MaxBackoff.Ticks));
                }
            }
            catch (OperationCanceledException)
            {
                // Stopping.
            }
            finally
            {
                Interlocked.Exchange(ref _reconnecting, 0);
            }
        });
    }

    /// <inheritdoc/>
    public async ValueTask DisposeAsync()
    {
        _wantOnline = false;
        await _stopping.CancelAsync();
        _commands.Writer.TryComplete();
        if (_worker is not null)
        {
            try
            {
#pragma warning disable VSTHRD003 // thread-pool worker, no synchronisation context
                await _worker;
#pragma warning restore VSTHRD003
            }
            catch (OperationCanceledException)
            {
                // Stopping.
            }
        }

        _client.Dispose();
        _stopping.Dispose();
        _sendLock.Dispose();
    }

    private static TaskCompletionSource NewSignal() => new(TaskCreationOptions.RunContinuationsAsynchronously);
}
