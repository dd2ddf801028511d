using System.Diagnostics;
using System.Text.Json;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Npgsql;
using PumpFleet.Contracts.Events;
using PumpFleet.Contracts.Hub;
using PumpFleet.Contracts.Grains;
using PumpFleet.Gateway.Hosting;
using PumpFleet.Gateway.Hubs;
using PumpFleet.Gateway.Protocol;
using PumpFleet.Gateway.Quarantine;

namespace PumpFleet.Gateway.Ingest;

/// <summary>A message as it came off MQTT. <see cref="HubId"/> is the authenticated publisher.</summary>
public sealed record InboundMessage(string HubId, string Topic, ReadOnlyMemory<byte> Payload, DateTimeOffset ReceivedAt, string? MessageId = null);

/// <summary>What happened to a message; every outcome is durable and may be acknowledged.</summary>
public enum IngestOutcome
{
    /// <summary>Events stored (some events of it may have been rejected).</summary>
    Accepted,
    /// <summary>Invalid as a whole, or every event invalid: quarantined and answered.</summary>
    Rejected,
    /// <summary>Not authorised (other hub's topic, unpaired pump, forbidden topic): quarantined.</summary>
    Refused,
}

/// <summary>The outcome with the committed seq (when the grain was called) and the rejects sent.</summary>
public sealed record IngestReport(IngestOutcome Outcome, long? CommittedSeq, IReadOnlyList<Problem> Rejects, int AcceptedEvents = 0);

/// <summary>
/// The one pipeline of both modes: validate, authorise, call the pump grain, quarantine and answer. It returns only
/// when everything it decided is durable (events in the store, bad input in the quarantine, replies handed to the
/// broker); otherwise it throws <see cref="DependencyUnavailableException"/> and the caller must not acknowledge.
/// </summary>
public sealed partial class IngestPipeline(
    IGrainFactory grains,
    QuarantineStore quarantine,
    HubStore hubs,
    IHubReplyPublisher replies,
    HubActivityTracker activity,
    GatewayInstruments instruments,
    IOptions<HubAuthOptions> hubOptions,
    IOptions<MqttGatewayOptions> mqttOptions,
    NpgsqlDataSource dataSource,
    PoisonTracker poison,
    TimeProvider time,
    ILogger<IngestPipeline> logger)
{
    private const string AutoPairBy = "gateway:auto-pair-on-first-batch";

    private readonly PumpIngestGrains _pumps = new(grains);
    private int _autoPairWarned;

    /// <summary>
    /// Handles a publish on any topic by a hub. Returns when the outcome is durable and may be acknowledged; throws
    /// <see cref="DependencyUnavailableException"/>, <see cref="RetryLaterException"/> or
    /// <see cref="UnexpectedFailureException"/> when it must not be acknowledged yet.
    /// </summary>
    public async Task<IngestReport> ProcessAsync(InboundMessage m, CancellationToken ct)
    {
        try
        {
            var report = await ProcessCoreAsync(m, ct);
            poison.Clear(m.HubId, m.Topic);
            return report;
        }
        catch (Exception e) when (e is not (DependencyUnavailableException or RetryLaterException or OperationCanceledException or OutOfMemoryException))
        {
            // Neither an input error the parser knows (those are answered above) nor a known dependency failure.
            var attempt = poison.RecordFailure(m.HubId, m.Topic, e);
            var threshold = mqttOptions.Value.PoisonThreshold;
            if (attempt < threshold)
            {
                instruments.OnUnexpectedFailure(poisoned: false);
                LogUnexpectedFailure(m.HubId, m.Topic, attempt, threshold, e);
                throw new UnexpectedFailureException(attempt, e);
            }

            instruments.OnUnexpectedFailure(poisoned: true);
            LogPoison(m.HubId, m.Topic, attempt, e);
            var report = await RejectMessageAsync(m, HubTopics.Parse(m.Topic), RejectCodes.PoisonMessage,
                $"Processing failed {attempt} times in a row with the same unexpected error ({e.GetType().Name}: {e.Message}); the message is quarantined as poison. Its events are not acknowledged: resend them in another message or declare them lost.",
                refused: false, ct);
            poison.Clear(m.HubId, m.Topic);
            instruments.OnMessage(MessageResults.Rejected, 0, TimeSpan.Zero);
            return report;
        }
    }

    /// <summary>
    /// External mode: the message of a hub the registry says is revoked (the broker may not have reloaded its
    /// files yet) is refused without being looked at: quarantined as <c>hub-revoked</c>, and may be acknowledged.
    /// </summary>
    public async Task<IngestReport> RefuseRevokedAsync(InboundMessage m, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(m);
        var report = await RejectMessageAsync(m, HubTopics.Parse(m.Topic), RejectCodes.HubRevoked,
            $"Hub '{m.HubId}' is revoked; its messages are not accepted.", refused: true, ct);
        instruments.OnMessage(MessageResults.Refused, 0, TimeSpan.Zero);
        return report;
    }

    private async Task<IngestReport> ProcessCoreAsync(InboundMessage m, CancellationToken ct)
    {
        var started = Stopwatch.GetTimestamp();
        activity.Seen(m.HubId, m.ReceivedAt);
        var topic = HubTopics.Parse(m.Topic);
        if (topic.Kind == HubTopicKind.Status && topic.HubId == m.HubId && topic.IdsValid)
        {
            await ProcessStatusAsync(m, ct);
            return new IngestReport(IngestOutcome.Accepted, null, []);
        }

        var report = await ProcessEventsAsync(m, topic, ct);
        instruments.OnMessage(report.Outcome switch
        {
            IngestOutcome.Accepted => MessageResults.Accepted,
            IngestOutcome.Rejected => MessageResults.Rejected,
            _ => MessageResults.Refused,
        }, report.AcceptedEvents, Stopwatch.GetElapsedTime(started));
        return report;
    }

    private async Task<IngestReport> ProcessEventsAsync(InboundMessage m, HubTopic topic, CancellationToken ct)
    {
        using var authorize = GatewayTracing.Source.StartActivity("authorize");
        if (topic.Kind != HubTopicKind.Events)
        {
            var invalidShape = topic.Kind == HubTopicKind.Unknown || !topic.IdsValid;
            if (topic.Kind is HubTopicKind.Unknown && topic.HubId == m.HubId && m.Topic.EndsWith("/events", StringComparison.Ordinal))
            {
                return await RejectMessageAsync(m, topic, RejectCodes.InvalidTopic,
                    $"Topic '{m.Topic}' is not pumpfleet/v1/hubs/{{hubId}}/pumps/{{serial}}/events.", refused: false, ct);
            }

            return await RejectMessageAsync(m, topic, RejectCodes.TopicNotAllowed, invalidShape
                ? $"Topic '{m.Topic}' is not a hub protocol v1 topic a hub may publish to."
                : $"Hubs may not publish to '{m.Topic}': ack and rejects are sent by the platform.", refused: true, ct);
        }

        if (topic.HubId != m.HubId)
        {
            return await RejectMessageAsync(m, topic, RejectCodes.HubMismatch,
                $"Hub '{m.HubId}' published on the topic of hub '{topic.HubId}'; a hub may publish only under its own hub id.", refused: true, ct);
        }

        if (!topic.IdsValid)
        {
            return await RejectMessageAsync(m, topic, RejectCodes.InvalidTopic,
                $"Topic '{m.Topic}' has an invalid id: hub ids and serials must match ^[A-Za-z0-9][A-Za-z0-9._-]{{0,63}}$.", refused: false, ct);
        }

        authorize?.Stop();
        var serial = topic.Serial!;
        var parsed = BatchParser.Parse(m.Payload);
        if (parsed.Error is { } error)
        {
            LogMessageRejected(m.HubId, serial, error.Code, error.Reason);
            return await RejectMessageAsync(m, topic, error.Code, error.Reason, refused: false, ct);
        }

        var batch = parsed.Batch!;
        var items = new List<QuarantineItem>();
        var rejects = new List<Problem>();
        foreach (var bad in batch.Invalid)
        {
            items.Add(new QuarantineItem(m.HubId, serial, m.Topic, false, false, bad.Seq, bad.Code, bad.Reason, m.ReceivedAt,
                bad.RawBytes ?? System.Text.Encoding.UTF8.GetBytes(bad.Raw)));
            rejects.Add(new Problem(bad.Seq, bad.Code, bad.Reason));
        }

        IngestResult? result = null;
        var rejectedSeqs = batch.Invalid.Where(i => i.Seq is not null).Select(i => new RejectedSeq(i.Seq!.Value, i.Code)).ToList();
        if (batch.Events.Count > 0 || rejectedSeqs.Count > 0)
        {
            // Invalid events go to the grain by seq only, so it can account for them (the watermark moves past a
            // rejected seq instead of waiting for it forever).
            var ingest = new IngestBatch
            {
                HubId = m.HubId, ReceivedAt = m.ReceivedAt, Device = batch.Device, Events = batch.Events, MessageId = m.MessageId,
                RejectedSeqs = rejectedSeqs.Count > 0 ? rejectedSeqs : null,
            };
            result = await CallGrainAsync(serial, ingest, ct);
            var whole = result.Rejections.FirstOrDefault(r => r.Seq is null);
            if (whole is not null && whole.Code == RejectionCodes.NotPaired && hubOptions.Value.AutoPairOnFirstBatch &&
                await TryAutoPairAsync(m.HubId, serial, ct))
            {
                result = await CallGrainAsync(serial, ingest, ct);
                whole = result.Rejections.FirstOrDefault(r => r.Seq is null);
            }

            if (whole is not null && batch.Events.Count == 0)
            {
                // Only invalid events, sent for accounting, and the pump cannot take them (not paired, no device yet):
                // they are answered one by one below and not accounted for, so the hub resends them.
                result = null;
                whole = null;
            }

            if (whole is not null && whole.Code == RejectionCodes.DeviceRequired && mqttOptions.Value.Mode == GatewayMode.External &&
                time.GetUtcNow() - m.ReceivedAt < mqttOptions.Value.External.ReorderWindow)
            {
                throw new RetryLaterException(
                    $"Pump {serial} has no device yet; its first batch may still be in flight on another gateway instance.");
            }

            if (whole is not null)
            {
                var refused = whole.Code == RejectionCodes.NotPaired;
                LogMessageRejected(m.HubId, serial, whole.Code, whole.Reason);
                return await RejectMessageAsync(m, topic, whole.Code, whole.Reason, refused, ct);
            }

            foreach (var r in result?.Rejections ?? [])
            {
                var raw = r.Seq is { } s && batch.RawBySeq.TryGetValue(s, out var text) ? text : "";
                items.Add(new QuarantineItem(m.HubId, serial, m.Topic, false, false, r.Seq, r.Code, r.Reason, m.ReceivedAt,
                    System.Text.Encoding.UTF8.GetBytes(raw)));
                rejects.Add(new Problem(r.Seq, r.Code, r.Reason));
            }
        }

        await QuarantineAsync(items, ct);
        foreach (var p in rejects)
        {
            instruments.OnEventRejected(p.Code);
            await ReplyAsync(HubTopics.Rejects(m.HubId, serial), RejectJson(p), retain: false, ct);
        }

        if (result is null)
        {
            // Every event was invalid and none had a usable seq: nothing reached the grain, nothing to announce.
            return new IngestReport(IngestOutcome.Rejected, null, rejects);
        }

        await ReplyAsync(HubTopics.Ack(m.HubId, serial), AckJson(serial, result), retain: true, ct);
        LogStored(m.HubId, serial, result.Stored, result.Duplicates, rejects.Count, result.CommittedSeq);
        return batch.Events.Count == 0
            ? new IngestReport(IngestOutcome.Rejected, result.CommittedSeq, rejects)
            : new IngestReport(IngestOutcome.Accepted, result.CommittedSeq, rejects, batch.Events.Count - result.Rejections.Count);
    }

    private async Task<IngestResult> CallGrainAsync(string serial, IngestBatch batch, CancellationToken ct)
    {
        using var activity = GatewayTracing.Source.StartActivity("grain call");
        var attemptTimeout = mqttOptions.Value.GrainCallAttemptTimeout;
        for (var attempt = 1; ; attempt++)
        {
            var call = _pumps.Get(serial).IngestAsync(batch);
            try
            {
                return await call.WaitAsync(attemptTimeout, time, ct);
            }
            catch (TimeoutException) when (!call.IsCompleted && !ct.IsCancellationRequested)
            {
                // No answer within the attempt: when the silo that hosted the pump was killed, a call already sent
                // to it is neither answered nor failed until the Orleans client's response timeout (30 s). Calling
                // again reaches a new activation once the cluster has declared the silo dead (seconds). Safe because
                // ingest is idempotent by seq (a batch stored by the first call is answered as duplicates); the ack
                // still waits for an answer, and IngestTimeout still bounds the whole message.
                instruments.OnGrainCallRetried();
                LogGrainCallRetry(serial, attempt, attemptTimeout);
            }
            catch (Exception e) when (e is not OperationCanceledException || !ct.IsCancellationRequested)
            {
                throw Classify(e);
            }
        }
    }

    private async Task<bool> TryAutoPairAsync(string hubId, string serial, CancellationToken ct)
    {
        try
        {
            var view = await grains.GetGrain<IPumpQueryGrain>(serial).GetStateAsync().WaitAsync(ct);
            if (view.HubId is not null)
            {
                return false; // paired with another hub: the refusal stands
            }

            await grains.GetGrain<IPumpIngestGrain>(serial).PairAsync(hubId, AutoPairBy).WaitAsync(ct);
            // The first automatic pairing warns that the setting is on; the rest are routine in a development fleet.
            if (Interlocked.Exchange(ref _autoPairWarned, 1) == 0)
            {
                LogAutoPairedFirst(serial, hubId);
            }
            else
            {
                LogAutoPaired(serial, hubId);
            }

            return true;
        }
        catch (Exception e) when (e is not OperationCanceledException || !ct.IsCancellationRequested)
        {
            throw Classify(e);
        }
    }

    /// <summary>
    /// A grain call failed: a known dependency failure (PostgreSQL behind the grain, the cluster's messaging,
    /// timeouts, sockets) withholds the ack and is retried for as long as it lasts. Anything else is returned as
    /// is, for the poison counter: a deterministic fault must not be retried forever.
    /// </summary>
    private Exception Classify(Exception e)
    {
        if (IsPostgres(e))
        {
            return Unavailable(Dependencies.PostgreSql, e);
        }

        // WrappedException carries an exception thrown inside a grain, not a messaging failure.
        if (e is Orleans.Runtime.OrleansException and not Orleans.Runtime.WrappedException
            or TimeoutException or System.IO.IOException or System.Net.Sockets.SocketException or OperationCanceledException)
        {
            return Unavailable(Dependencies.Orleans, e);
        }

        return e;
    }

    private async Task<IngestReport> RejectMessageAsync(InboundMessage m, HubTopic topic, string code, string reason, bool refused, CancellationToken ct)
    {
        var serial = topic.Serial;
        await QuarantineAsync([new QuarantineItem(m.HubId, serial, m.Topic, true, refused, null, code, reason, m.ReceivedAt, m.Payload)], ct);
        var problem = new Problem(null, code, reason);
        // Answer on the publisher's own rejects topic; a reply can only be addressed when the serial segment is
        // usable as a topic level (it came from a valid topic name, so it holds no wildcard).
        if (!string.IsNullOrEmpty(serial) && topic.Kind is HubTopicKind.Events)
        {
            await ReplyAsync(HubTopics.Rejects(m.HubId, serial), RejectJson(problem), retain: false, ct);
        }

        if (refused)
        {
            LogRefused(m.HubId, m.Topic, code);
        }

        return new IngestReport(refused ? IngestOutcome.Refused : IngestOutcome.Rejected, null, [problem]);
    }

    private async Task ProcessStatusAsync(InboundMessage m, CancellationToken ct)
    {
        bool? online = null;
        string? firmware = null;
        DateTimeOffset? at = null;
        try
        {
            using var doc = JsonDocument.Parse(m.Payload);
            var root = doc.RootElement;
            if (root.ValueKind == JsonValueKind.Object)
            {
                if (root.TryGetProperty("online", out var o) && o.ValueKind is JsonValueKind.True or JsonValueKind.False)
                {
                    online = o.GetBoolean();
                }

                if (root.TryGetProperty("firmware", out var f) && f.ValueKind == JsonValueKind.String)
                {
                    firmware = f.GetString();
                }

                if (root.TryGetProperty("at", out var a) && a.ValueKind == JsonValueKind.String && a.TryGetDateTimeOffset(out var t))
                {
                    at = t;
                }
            }
        }
        catch (JsonException)
        {
        }

        if (online is null)
        {
            await QuarantineAsync([new QuarantineItem(m.HubId, null, m.Topic, true, false, null, RejectCodes.InvalidStatus,
                "A status payload must be a JSON object with a boolean 'online'.", m.ReceivedAt, m.Payload)], ct);
            return;
        }

        await SetHubStatusAsync(m.HubId, online.Value, firmware, at, m.ReceivedAt, ct);
    }

    /// <summary>Records a hub online or offline (connect and disconnect in embedded mode, status messages).</summary>
    /// <param name="fromConnection">True for the embedded broker's connect and disconnect events: no message was received,
    /// so a failure is logged as a status that was not recorded, not as a message that was not acknowledged.</param>
    public async Task SetHubStatusAsync(string hubId, bool online, string? firmware, DateTimeOffset? at, DateTimeOffset seenAt, CancellationToken ct,
        bool fromConnection = false)
    {
        try
        {
            await hubs.SetStatusAsync(hubId, online, firmware, at, seenAt, ct);
        }
        catch (Exception e) when (e is NpgsqlException or TimeoutException or InvalidOperationException)
        {
            if (!fromConnection)
            {
                throw Unavailable(Dependencies.PostgreSql, e);
            }

            var failure = Unavailable(Dependencies.PostgreSql, e, logged: false);
            LogConnectionStatusFailed(Dependencies.PostgreSql, hubId, online ? "online" : "offline", e);
            throw failure;
        }
    }

    private async Task QuarantineAsync(IReadOnlyList<QuarantineItem> items, CancellationToken ct)
    {
        if (items.Count == 0)
        {
            return;
        }

        try
        {
            await quarantine.AddAsync(items, ct);
        }
        catch (Exception e) when (e is not OperationCanceledException || !ct.IsCancellationRequested)
        {
            throw Unavailable(Dependencies.PostgreSql, e);
        }

        foreach (var i in items)
        {
            instruments.OnQuarantined(i.Code);
        }
    }

    private async Task ReplyAsync(string topic, byte[] payload, bool retain, CancellationToken ct)
    {
        using var activity = GatewayTracing.Source.StartActivity(topic.EndsWith("/ack", StringComparison.Ordinal) ? "publish ack" : "publish reply");
        try
        {
            await replies.PublishAsync(topic, payload, retain, ct);
        }
        catch (Exception e) when (e is not OperationCanceledException || !ct.IsCancellationRequested)
        {
            throw Unavailable(Dependencies.Broker, e);
        }
    }

    private DependencyUnavailableException Unavailable(string dependency, Exception e, bool logged = true)
    {
        instruments.OnDependencyFailure(dependency);
        if (logged)
        {
            LogDependencyFailed(dependency, e);
        }

        if (dependency == Dependencies.PostgreSql)
        {
            // After a database restart every idle pooled connection is dead and would fail one message each.
            dataSource.Clear();
        }

        return new DependencyUnavailableException(dependency, e);
    }

    private static bool IsPostgres(Exception e)
    {
        for (var x = e; x is not null; x = x.InnerException)
        {
            // A PostgresException thrown in the silo may arrive as an Orleans CodecNotFoundException naming the
            // type (Npgsql exceptions have no Orleans codec), so the message is checked too.
            if (x is NpgsqlException or PumpFleet.Contracts.Grains.PumpStorageException || x.GetType().FullName?.StartsWith("Npgsql", StringComparison.Ordinal) == true ||
                x.Message.Contains("Npgsql.", StringComparison.Ordinal))
            {
                return true;
            }
        }

        return false;
    }

    private byte[] AckJson(string serial, IngestResult r) =>
        JsonSerializer.SerializeToUtf8Bytes(new AckPayload(serial, r.CommittedSeq, r.HighestSeq,
            [.. (r.Missing ?? []).Select(g => new[] { g.From, g.To })], Rfc3339.Format(time.GetUtcNow())), GatewayJson.Options);

    private static byte[] RejectJson(Problem p) =>
        JsonSerializer.SerializeToUtf8Bytes(new RejectPayload(p.Seq, p.Code, p.Reason), GatewayJson.Options);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Message from hub {HubId} for pump {Serial} rejected: {Code}: {Reason}")]
    private partial void LogMessageRejected(string hubId, string serial, string code, string reason);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Publish of hub {HubId} on {Topic} refused: {Code}")]
    private partial void LogRefused(string hubId, string topic, string code);

    [LoggerMessage(Level = LogLevel.Debug, Message = "Hub {HubId} pump {Serial}: stored {Stored}, duplicates {Duplicates}, rejected {Rejected}, committed seq {CommittedSeq}")]
    private partial void LogStored(string hubId, string serial, int stored, int duplicates, int rejected, long committedSeq);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Pump {Serial} paired automatically with hub {HubId}: Gateway:Hubs:AutoPairOnFirstBatch is on (Development only), so the first hub to send a pump's batch claims it; further automatic pairings are logged as information")]
    private partial void LogAutoPairedFirst(string serial, string hubId);

    [LoggerMessage(Level = LogLevel.Information, Message = "Pump {Serial} paired automatically with hub {HubId} (Gateway:Hubs:AutoPairOnFirstBatch)")]
    private partial void LogAutoPaired(string serial, string hubId);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Message of hub {HubId} on {Topic} failed unexpectedly ({Attempt} of {Threshold} in a row before it is quarantined as poison); not acknowledged, it will be delivered again")]
    private partial void LogUnexpectedFailure(string hubId, string topic, int attempt, int threshold, Exception e);

    [LoggerMessage(Level = LogLevel.Error, Message = "Message of hub {HubId} on {Topic} failed the same unexpected way {Attempt} times in a row: quarantined as poison-message and answered")]
    private partial void LogPoison(string hubId, string topic, int attempt, Exception e);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Pump {Serial}: ingest call attempt {Attempt} got no answer within {AttemptTimeout}; calling again (its silo may have died)")]
    private partial void LogGrainCallRetry(string serial, int attempt, TimeSpan attemptTimeout);

    [LoggerMessage(Level = LogLevel.Error, Message = "Dependency {Dependency} failed; the message is not acknowledged and will be delivered again")]
    private partial void LogDependencyFailed(string dependency, Exception e);

    [LoggerMessage(Level = LogLevel.Error, Message = "Dependency {Dependency} failed while recording hub {HubId} {Status} at its connection event (no message involved, nothing left unacknowledged); its online flag stays as it was until its next connection event or status message, its last-seen time still advances with its messages")]
    private partial void LogConnectionStatusFailed(string dependency, string hubId, string status, Exception e);
}
