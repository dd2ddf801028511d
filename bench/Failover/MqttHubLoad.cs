using System.Diagnostics;
using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using MQTTnet;
using MQTTnet.Protocol;

namespace PumpFleet.Failover;

/// <summary>
/// Bedside hubs over real MQTT that follow the protocol's resend rule: each pump's next batch starts right above the
/// <c>committedSeq</c> of its retained ack; a batch counts as delivered only when the PUBACK is a success and the ack
/// covers it; on anything else (no PUBACK, connection lost, no ack in time) the hub reconnects and sends everything
/// above <c>committedSeq</c> again. Every batch carries <c>device</c>, so a resend is always complete on its own.
/// </summary>
public sealed class MqttHubLoad(int hubs, int pumpsPerHub, int batchSize, int port, string runId) : IAsyncDisposable
{
    private static readonly TimeSpan PublishTimeout = TimeSpan.FromSeconds(40);
    private static readonly TimeSpan AckTimeout = TimeSpan.FromSeconds(10);
    private readonly List<Hub> _hubs = [.. Enumerable.Range(0, hubs).Select(h => new Hub($"FM{runId}-H{h:D2}", pumpsPerHub))];
    private readonly DateTimeOffset _t0 = DateTimeOffset.UtcNow.AddDays(-20);
    private volatile bool _generating = true;
    private CancellationTokenSource? _stop;
    private Task? _running;

    /// <summary>Every pump serial.</summary>
    public IEnumerable<string> Serials => _hubs.SelectMany(h => h.Pumps.Select(p => p.Serial));

    /// <summary>Per pump: highest seq sent, committedSeq acknowledged, acks.</summary>
    public IEnumerable<HubPump> Pumps => _hubs.SelectMany(h => h.Pumps);

    /// <summary>Hub ids.</summary>
    public IEnumerable<string> HubIds => _hubs.Select(h => h.Id);

    /// <summary>Publishes that failed (no PUBACK, an error code, no ack in time, or the connection was lost), over all hubs.</summary>
    public long Failures => _hubs.Sum(h => Interlocked.Read(ref h.Failures));

    /// <summary>Successful connects after a hub's first one (each follows a lost connection), over all hubs.</summary>
    public long Reconnects => _hubs.Sum(h => Interlocked.Read(ref h.Reconnects));

    /// <summary>Whether new events are made; when false the hubs only deliver what they already sent (drain).</summary>
    public bool Generating
    {
        get => _generating;
        set => _generating = value;
    }

    /// <summary>True when every pump's committedSeq has reached the highest seq it sent.</summary>
    public bool Drained => Pumps.All(p => p.Committed >= p.HighestSent);

    /// <summary>Starts every hub's loop.</summary>
    public void Start()
    {
        _stop = new CancellationTokenSource();
        var ct = _stop.Token;
        _running = Task.WhenAll(_hubs.Select(h => Task.Run(() => RunHubAsync(h, ct), CancellationToken.None)));
    }

    /// <summary>
    /// Per hub, the time from <paramref name="from"/> to its first ack of a publish that started at or after
    /// <paramref name="startedAfter"/> and was acknowledged at or after <paramref name="from"/> (Stopwatch timestamps);
    /// null for a hub that has had none yet.
    /// </summary>
    public IReadOnlyList<TimeSpan?> FirstAckAfter(long startedAfter, long from) =>
        [.. _hubs.Select(h =>
        {
            lock (h.Acks)
            {
                foreach (var (started, acked) in h.Acks)
                {
                    if (started >= startedAfter && acked >= from)
                    {
                        return (TimeSpan?)Stopwatch.GetElapsedTime(from, acked);
                    }
                }
            }

            return null;
        })];

    /// <summary>Acks each hub received so far (for "the load went on" conditions).</summary>
    public IReadOnlyList<int> AckCounts => [.. _hubs.Select(h => { lock (h.Acks) { return h.Acks.Count; } })];

    /// <inheritdoc />
    public async ValueTask DisposeAsync()
    {
        if (_stop is not null)
        {
            await _stop.CancelAsync();
            if (_running is not null)
            {
#pragma warning disable VSTHRD003 // the hub loops run on the thread pool (Task.Run in Start): no context to deadlock on
                await _running.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
#pragma warning restore VSTHRD003
            }

            _stop.Dispose();
        }

        foreach (var h in _hubs)
        {
            h.Client.Dispose();
        }
    }

    private async Task RunHubAsync(Hub hub, CancellationToken ct)
    {
        var next = 0;
        while (!ct.IsCancellationRequested)
        {
            if (!hub.Client.IsConnected && !await TryConnectAsync(hub, ct))
            {
                await Pause(ct);
                continue;
            }

            var pump = hub.Pumps[next++ % hub.Pumps.Count];
            var from = pump.Committed + 1;
            var to = from + batchSize - 1;
            if (!_generating)
            {
                to = Math.Min(to, pump.HighestSent);
            }

            if (from > to)
            {
                if (hub.Pumps.All(p => p.Committed >= p.HighestSent))
                {
                    await Pause(ct); // drained: nothing to deliver until generation resumes
                }

                continue;
            }

            pump.HighestSent = Math.Max(pump.HighestSent, to);
            var started = Stopwatch.GetTimestamp();
            try
            {
                using var timeout = CancellationTokenSource.CreateLinkedTokenSource(ct);
                timeout.CancelAfter(PublishTimeout);
                var result = await hub.Client.PublishAsync(new MqttApplicationMessageBuilder()
                    .WithTopic($"pumpfleet/v1/hubs/{hub.Id}/pumps/{pump.Serial}/events")
                    .WithPayload(Batch(from, to))
                    .WithQualityOfServiceLevel(MqttQualityOfServiceLevel.AtLeastOnce).Build(), timeout.Token);
                if (!result.IsSuccess)
                {
                    throw new InvalidOperationException($"PUBACK {result.ReasonCode}: {result.ReasonString}");
                }

                if (!await pump.WaitCommittedAsync(to, AckTimeout, ct))
                {
                    throw new TimeoutException($"no ack covering seq {to} within {AckTimeout}");
                }

                lock (hub.Acks)
                {
                    hub.Acks.Add((started, Stopwatch.GetTimestamp()));
                }
            }
            catch (Exception e) when (e is not OutOfMemoryException && !ct.IsCancellationRequested)
            {
                // Not delivered: reconnect and resend everything above committedSeq (the protocol's resend rule).
                Interlocked.Increment(ref hub.Failures);
                hub.LastError = e.GetType().Name + ": " + e.Message;
                await DisconnectQuietlyAsync(hub);
                await Pause(ct);
            }
            catch (OperationCanceledException)
            {
                return;
            }
        }
    }

    private async Task<bool> TryConnectAsync(Hub hub, CancellationToken ct)
    {
        try
        {
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(ct);
            timeout.CancelAfter(TimeSpan.FromSeconds(10));
            var r = await hub.Client.ConnectAsync(new MqttClientOptionsBuilder()
                .WithTcpServer("127.0.0.1", port)
                .WithClientId(hub.Id)
                .WithCredentials(hub.Id, Password(hub.Id))
                .WithProtocolVersion(MQTTnet.Formatter.MqttProtocolVersion.V500)
                .WithCleanStart(false).WithSessionExpiryInterval(3600)
                .WithTimeout(TimeSpan.FromSeconds(10))
                .Build(), timeout.Token);
            if (r.ResultCode != MqttClientConnectResultCode.Success)
            {
                hub.LastError = "CONNACK " + r.ResultCode;
                await DisconnectQuietlyAsync(hub);
                return false;
            }

            await hub.Client.SubscribeAsync(new MqttClientSubscribeOptionsBuilder()
                .WithTopicFilter($"pumpfleet/v1/hubs/{hub.Id}/pumps/+/ack", MqttQualityOfServiceLevel.AtLeastOnce).Build(), timeout.Token);
            if (Interlocked.Exchange(ref hub.Connected, 1) == 1)
            {
                Interlocked.Increment(ref hub.Reconnects);
            }

            return true;
        }
        catch (Exception e) when (e is not OutOfMemoryException && !ct.IsCancellationRequested)
        {
            hub.LastError = "connect: " + e.GetType().Name + ": " + e.Message;
            await DisconnectQuietlyAsync(hub);
            return false;
        }
    }

    private static async Task DisconnectQuietlyAsync(Hub hub)
    {
        try
        {
            if (hub.Client.IsConnected)
            {
                using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(2));
                await hub.Client.DisconnectAsync(new MqttClientDisconnectOptionsBuilder().Build(), timeout.Token);
            }
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            // The connection is already broken; the next connect replaces it.
        }
    }

    // A hub's backoff between attempts: short, so recovery times measure the platform, not the hub.
    private static Task Pause(CancellationToken ct) => Task.Delay(TimeSpan.FromMilliseconds(100), ct).ContinueWith(_ => { }, TaskScheduler.Default);

    private byte[] Batch(long from, long to)
    {
        var sb = new StringBuilder(200 + (int)(to - from + 1) * 130);
        sb.Append("""{"v":1,"device":{"model":"SM2-40","firmware":"4.2.1","lot":"FAILOVER","reservoirCapacityMl":40},"events":[""");
        for (var seq = from; seq <= to; seq++)
        {
            var at = _t0.AddMinutes(seq);
            sb.Append(seq == from ? "" : ",").Append(CultureInfo.InvariantCulture,
                $$"""{"seq":{{seq}},"type":"dose.delivered","at":"{{at:yyyy-MM-ddTHH:mm:ssZ}}","from":"{{at.AddMinutes(-1):yyyy-MM-ddTHH:mm:ssZ}}","volumeMl":0.001,"kind":"basal"}""");
        }

        return Encoding.UTF8.GetBytes(sb.Append("]}").ToString());
    }

    /// <summary>The dev-fleet password of a hub: lowercase hex HMAC-SHA256(key = fleet secret, message = hub id).</summary>
    private static string Password(string hubId) =>
        Convert.ToHexStringLower(HMACSHA256.HashData(Encoding.UTF8.GetBytes(GatewayProcess.FleetSecret), Encoding.UTF8.GetBytes(hubId)));

    private sealed class Hub
    {
        public Hub(string id, int pumps)
        {
            Id = id;
            Pumps = [.. Enumerable.Range(0, pumps).Select(p => new HubPump($"{id}-P{p}"))];
            var bySerial = Pumps.ToDictionary(p => p.Serial, StringComparer.Ordinal);
            Client = new MqttClientFactory().CreateMqttClient();
            Client.ApplicationMessageReceivedAsync += e =>
            {
                // pumpfleet/v1/hubs/{hub}/pumps/{serial}/ack: {"committedSeq": n, ...}
                var parts = e.ApplicationMessage.Topic.Split('/');
                if (parts.Length == 7 && bySerial.TryGetValue(parts[5], out var pump))
                {
                    using var doc = JsonDocument.Parse(e.ApplicationMessage.Payload);
                    pump.OnAck(doc.RootElement.GetProperty("committedSeq").GetInt64());
                }

                return Task.CompletedTask;
            };
        }

        public string Id { get; }

        public List<HubPump> Pumps { get; }

        public IMqttClient Client { get; }

        public List<(long Started, long Acked)> Acks { get; } = [];

        public long Failures;

        public long Reconnects;

        public int Connected;

        public string? LastError { get; set; }
    }
}

/// <summary>One simulated pump of a hub.</summary>
public sealed class HubPump(string serial)
{
    private readonly Lock _lock = new();
    private long _committed;
    private TaskCompletionSource _changed = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>The pump's serial.</summary>
    public string Serial { get; } = serial;

    /// <summary>Highest seq ever sent (written by the hub's own loop only).</summary>
    public long HighestSent { get; set; }

    /// <summary>Highest committedSeq any ack carried.</summary>
    public long Committed => Interlocked.Read(ref _committed);

    /// <summary>An ack arrived.</summary>
    public void OnAck(long committedSeq)
    {
        TaskCompletionSource changed;
        lock (_lock)
        {
            if (committedSeq <= _committed)
            {
                return;
            }

            Interlocked.Exchange(ref _committed, committedSeq);
            changed = _changed;
            _changed = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        }

        changed.TrySetResult();
    }

    /// <summary>Waits until committedSeq reaches <paramref name="seq"/>; false after <paramref name="timeout"/>.</summary>
    public async Task<bool> WaitCommittedAsync(long seq, TimeSpan timeout, CancellationToken ct)
    {
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(ct);
        deadline.CancelAfter(timeout);
        while (true)
        {
            Task changed;
            lock (_lock)
            {
                if (_committed >= seq)
                {
                    return true;
                }

                changed = _changed.Task;
            }

            try
            {
                await changed.WaitAsync(deadline.Token);
            }
            catch (OperationCanceledException) when (!ct.IsCancellationRequested)
            {
                return false;
            }
        }
    }
}
