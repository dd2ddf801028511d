using System.Net.ServerSentEvents;
using System.Text.Json.Serialization;
using System.Threading.Channels;
using Microsoft.Extensions.Options;
using Orleans.Streams;
using PumpFleet.Contracts;
using PumpFleet.Contracts.Events;
using PumpFleet.Contracts.Json;
using PumpFleet.Dashboard.Hosting;
using PumpFleet.ReadModels;
using PumpFleet.Streaming;

namespace PumpFleet.Dashboard.Live;

/// <summary>
/// The live channel of one dashboard process, shared by every open browser. It holds <b>one</b> subscription per
/// partition's live stream of the log provider (<see cref="LogStreams.ForLive"/>: only the event types of
/// <see cref="LogStreams.LiveTypes"/>, never a dose), so anomaly opened / acknowledged / resolved events and events
/// that can change a pump's status are pushed to every browser as they are committed, with no database query at all; and, while at least one browser is connected, it asks the read models for the fleet
/// summary once per <see cref="DashboardOptions.LiveInterval"/> for the whole process (not per browser), pushing it when
/// it changed (with none connected it asks nothing: the count by status reads the whole status table). A browser that
/// connects gets the summary at the read models' version of that moment at once and re-reads what it shows from the API, and the pages apply the pushed changes in place between; so a
/// browser that would lose a message (too slow to keep up: <see cref="BrowserQueue"/> messages waiting) or may have
/// lost some (a subscription found gone and made again) has its stream ended (<see cref="EndBrowserStreams"/>): it
/// reconnects by itself and re-reads the current state. Without the stream provider (streaming disabled) the summary
/// still flows.
/// </summary>
public sealed partial class LiveFeed(
    IServiceProvider services, IReadModelQueries queries, Caching.ReadModelVersion versions, IOptions<DashboardOptions> options, TimeProvider time, ILogger<LiveFeed> logger)
    : BackgroundService, IAsyncObserver<CommittedEvent>
{
    /// <summary>Messages a browser may fall behind before its stream is ended (it reconnects and re-reads).</summary>
    public const int BrowserQueue = 256;

    // After a change of the client's cluster connection the subscriptions are checked at once and again later: a
    // pulling agent may still remove one (it tried to deliver before the client's new connection was known on its
    // silo) after the first check found it in place.
    private static readonly TimeSpan[] ChecksAfterConnectionChange =
        [TimeSpan.Zero, TimeSpan.FromSeconds(5), TimeSpan.FromSeconds(15), TimeSpan.FromSeconds(60)];

    // A safety net only, for a removal the connection changes do not announce; the checks above are what brings the
    // live feed back after the silos died (tests/Dashboard.Tests/LiveFeedClusterTests: within a bound well below this).
    private static readonly TimeSpan SafetyNetCheck = TimeSpan.FromMinutes(5);
    private readonly Lock _gate = new();
    private readonly HashSet<Channel<SseItem<object>>> _browsers = [];
    private readonly TaskCompletionSource<FleetSummary> _firstSummary = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly List<DateTimeOffset> _checksDue = [];
    private FleetSummary? _summary;
    // The summary read for browsers connecting at one version (shared by all of them; null when none is under way).
    private Task<FleetSummary>? _connectRead;
    private string? _connectReadVersion;
    private long _summaryQueries;
    private long _ticks;
    private long _resubscribed;
    private bool _noStreams;

    /// <summary>Browsers connected now.</summary>
    public int Browsers
    {
        get
        {
            lock (_gate)
            {
                return _browsers.Count;
            }
        }
    }

    /// <summary>Read-model queries this process made for the live channel so far (a figure for tests and the benchmark).</summary>
    public long SummaryQueries => Interlocked.Read(ref _summaryQueries);

    /// <summary>Rounds of the process's live loop so far (a figure for tests: the loop ran, whatever it read).</summary>
    public long Ticks => Interlocked.Read(ref _ticks);

    /// <summary>True once the live streams are subscribed.</summary>
    public bool Subscribed { get; private set; }

    /// <summary>
    /// Partition subscriptions this process found gone from the pub-sub state and made again after its first
    /// subscription (a figure for tests and diagnosis: each one is a subscription a pulling agent removed).
    /// </summary>
    public long Resubscribed => Interlocked.Read(ref _resubscribed);

    /// <summary>
    /// One browser's messages: the current fleet summary first, then whatever is pushed, until
    /// <paramref name="ct"/> (the request) ends.
    /// </summary>
    public async IAsyncEnumerable<SseItem<object>> ConnectAsync([System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken ct)
    {
        var channel = Channel.CreateBounded<SseItem<object>>(new BoundedChannelOptions(BrowserQueue)
        {
            FullMode = BoundedChannelFullMode.DropOldest,
            SingleReader = true,
        });
        lock (_gate)
        {
            _browsers.Add(channel);
        }

        // A page re-reads what it shows on its connection's first message and from then on applies what is pushed. The
        // shared version reading may be up to Dashboard:ReadCache:VersionMaxAge old, and a change the read models took
        // in that time was pushed before this browser listened: its re-read would be answered from the cache at the
        // older version and stay so until the next change. A reading taken now (one query shared by every browser
        // connecting at this moment) makes that re-read see at least the read models of this moment.
        var version = await RefreshVersionForConnectAsync(ct);
        try
        {
            yield return new SseItem<object>(await SummaryForConnectAsync(version, ct), "fleet");
            await foreach (var item in channel.Reader.ReadAllAsync(ct))
            {
                // With LiveTimings: this browser's copy, stamped as its stream takes it for writing.
                yield return item.Data is LiveAnomaly { Trace: { } trace } anomaly
                    ? new SseItem<object>(anomaly with { Trace = trace with { WriteMs = time.GetUtcNow().ToUnixTimeMilliseconds() } }, item.EventType)
                    : item;
            }
        }
        finally
        {
            lock (_gate)
            {
                _browsers.Remove(channel);
            }
        }
    }

    private async Task<string?> RefreshVersionForConnectAsync(CancellationToken ct)
    {
        try
        {
            // Not counted in SummaryQueries: the reading is shared with every browser connecting now and with the API.
            return (await versions.CurrentAsync(TimeSpan.Zero, ct)).Version;
        }
        catch (Exception e) when (e is not OperationCanceledException || !ct.IsCancellationRequested)
        {
            // The database is unreachable: the browser still connects; its re-read fails or is answered as before.
            LogConnectVersionFailed(logger, e);
            return null;
        }
    }

    // The first message of a connecting browser: the summary at the version read for it. The pages draw their status
    // cards from it (fleet.js), so it must be the current one, not the first this process read (what was sent before:
    // stale cards until the next change) nor the loop's, which is not kept while no browser listens. One read per
    // version, shared by every browser connecting at it; without a database, the last summary there is.
    private async Task<FleetSummary> SummaryForConnectAsync(string? version, CancellationToken ct)
    {
        var latest = Volatile.Read(ref _summary);
        if (latest is not null && (version is null || latest.Version == version))
        {
            return latest;
        }

        if (version is not null)
        {
            Task<FleetSummary> read;
            lock (_gate)
            {
                if (_connectRead is null || _connectReadVersion != version || _connectRead.IsFaulted || _connectRead.IsCanceled)
                {
                    Interlocked.Increment(ref _summaryQueries);
                    _connectRead = queries.FleetSummaryAsync(CancellationToken.None);
                    _connectReadVersion = version;
                }

                read = _connectRead;
            }

            try
            {
                return await read.WaitAsync(ct);
            }
            catch (Exception e) when (!ct.IsCancellationRequested)
            {
                LogConnectSummaryFailed(logger, e);
            }
        }

        return latest ?? await _firstSummary.Task.WaitAsync(ct);
    }

    /// <inheritdoc />
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var checkedAt = DateTimeOffset.MinValue;
        var connectionChanges = 0L;
        string? version = null;
        using var timer = new PeriodicTimer(options.Value.LiveInterval, time);
        do
        {
            try
            {
                var now = time.GetUtcNow();
                var changes = ConnectionChanges()?.Changes ?? 0;
                if (changes != connectionChanges)
                {
                    connectionChanges = changes;
                    _checksDue.Clear();
                    _checksDue.AddRange(ChecksAfterConnectionChange.Select(d => now + d));
                }

                var due = _checksDue.RemoveAll(t => t <= now) > 0;
                // Until the first subscription succeeds (the cluster may not be up yet) this is tried at every tick.
                if ((!Subscribed && !_noStreams) || due || now - checkedAt >= SafetyNetCheck)
                {
                    try
                    {
                        await EnsureSubscribedAsync();
                        checkedAt = now;
                    }
                    catch (Exception e) when (!stoppingToken.IsCancellationRequested)
                    {
                        // The cluster is away: the summary below still flows; the next due check tries again.
                        LogSubscribeFailed(logger, e);
                    }
                }

                Interlocked.Increment(ref _ticks);
                if (Browsers == 0)
                {
                    // Nobody listens: no summary (at a million pumps its count by status scans the whole status table),
                    // and the next tick with a browser reads it afresh. A connecting browser reads its own (above).
                    version = null;
                    continue;
                }

                Interlocked.Increment(ref _summaryQueries);
                // Read afresh and shared with the API's read cache, which then answers the re-reads this push
                // prompts at this version or a later one (Caching.ReadModelVersion).
                var current = (await versions.CurrentAsync(TimeSpan.Zero, stoppingToken)).Version;
                if (current != version || _summary is null)
                {
                    Interlocked.Increment(ref _summaryQueries);
                    var summary = await queries.FleetSummaryAsync(stoppingToken);
                    version = current;
                    _summary = summary;
                    _firstSummary.TrySetResult(summary);
                    Broadcast(new SseItem<object>(summary, "fleet"));
                }
            }
            catch (Exception e) when (!stoppingToken.IsCancellationRequested)
            {
                // The database or the cluster is away: browsers keep what they show, the next tick tries again.
                LogRefreshFailed(logger, e);
            }
        }
        while (await timer.WaitForNextTickAsync(stoppingToken));
    }

    // The client's connection counter (a stand-alone dashboard, an Orleans client); null in a silo's own client.
    private ClientConnectionChanges? ConnectionChanges()
    {
        try
        {
            return services.GetService<IClusterClient>()?.ServiceProvider.GetService<ClientConnectionChanges>();
        }
        catch (InvalidOperationException)
        {
            return null;
        }
    }

    // One subscription per partition's live stream for this process. The silos keep subscriptions in PostgreSQL (PubSubStore,
    // src/Clustering migration 033), so a silo's death does not lose them (tests/Streaming.Tests/PubSubStoreTests).
    // What the store does not cover: a silo's pulling agent that cannot reach this client (ClientNotAvailableException;
    // after every silo died, the new silos deliver before the client has found their gateways) removes the
    // subscription from the pub-sub state and tells nobody (Orleans' PersistentStreamPullingAgent.ErrorProtocol →
    // UnregisterConsumer). So this runs when the client's cluster connection changes (ClientConnectionChanges): a
    // handle that is gone is subscribed again, one still there is resumed. It costs 16 grain calls, no query.
    private async Task EnsureSubscribedAsync()
    {
        IStreamProvider provider;
        try
        {
            provider = services.GetRequiredService<IClusterClient>().GetStreamProvider(LogStreams.ProviderName);
        }
        catch (Exception e) when (e is KeyNotFoundException or InvalidOperationException)
        {
            // No provider registered is for good; a client not ready yet is tried again at the next tick.
            _noStreams = e is KeyNotFoundException;
            LogNoStreams(logger);
            return;
        }

        foreach (var id in LogStreams.AllLive())
        {
            var stream = provider.GetStream<CommittedEvent>(id);
            var handles = await stream.GetAllSubscriptionHandles();
            if (handles.Count == 0)
            {
                await stream.SubscribeAsync(this);
                if (Subscribed)
                {
                    Interlocked.Increment(ref _resubscribed);
                    LogResubscribed(logger, id.ToString());
                    // What was committed while the subscription was gone never reached the browsers: they re-read.
                    EndBrowserStreams();
                }

                continue;
            }

            await handles[0].ResumeAsync(this);
            foreach (var extra in handles.Skip(1))
            {
                await extra.UnsubscribeAsync();
            }
        }

        Subscribed = true;
    }

    /// <inheritdoc />
    public Task OnNextAsync(CommittedEvent item, StreamSequenceToken? token = null)
    {
        var message = ToMessage(item);
        if (message is not null)
        {
            if (options.Value.LiveTimings && message.Value.Data is LiveAnomaly anomaly)
            {
                // The queue's read times come in the delivery's request context (LogBatchContainer.ImportRequestContext).
                var trace = new LiveTrace(
                    RequestContext.Get(LogStreams.PreviousReadStartedKey) as long?, RequestContext.Get(LogStreams.ReadStartedKey) as long?,
                    RequestContext.Get(LogStreams.ReadKey) as long?, time.GetUtcNow().ToUnixTimeMilliseconds(), null);
                message = new SseItem<object>(anomaly with { Trace = trace }, message.Value.EventType);
            }

            Broadcast(message.Value);
        }

        return Task.CompletedTask;
    }

    /// <inheritdoc />
    public Task OnCompletedAsync() => Task.CompletedTask;

    /// <inheritdoc />
    public Task OnErrorAsync(Exception ex)
    {
        LogStreamError(logger, ex);
        return Task.CompletedTask;
    }

    /// <summary>The browser message for a committed event, or null when browsers do not care about it.</summary>
    internal static SseItem<object>? ToMessage(CommittedEvent e)
    {
        var serial = StreamIds.IsPump(e.StreamId) ? e.StreamId : null;
        switch (e.Type)
        {
            case "anomaly.detected" or "anomaly.acknowledged" or "anomaly.resolved":
                var payload = EventJson.Deserialize(e.Type, e.Data);
                return new SseItem<object>(payload switch
                {
                    AnomalyDetected d => new LiveAnomaly(d.AnomalyId, serial, "open", d.Kind, d.Severity, d.Summary, d.At, null, null, null, null, null),
                    AnomalyAcknowledged a => new LiveAnomaly(a.AnomalyId, serial, "acknowledged", null, null, null, null, a.By, a.At, null, null, a.Note),
                    AnomalyResolved r => new LiveAnomaly(r.AnomalyId, serial, "resolved", null, null, null, null, null, null, r.By, r.At, r.Note),
                    _ => throw new InvalidOperationException($"Unexpected payload for {e.Type}."),
                }, "anomaly");

            // What moves a pump's status (alarms, delivery, therapy phase, refills, reservoir, battery): the page
            // re-reads that pump. These cases and the anomaly ones above are LogStreams.LiveTypes, the live streams'
            // content (LiveFeedTests checks that the two agree).
            case "alarm.raised" or "alarm.cleared" or "delivery.state" or "therapy.phase" or "refill" or "reservoir.level" or "status" when serial is not null:
                return new SseItem<object>(new LivePump(serial, e.Type, e.ReceivedAt), "pump");

            default:
                return null;
        }
    }

    /// <summary>
    /// Ends every open browser's stream after what is already queued for it: each browser's EventSource reconnects by
    /// itself, gets the current summary and its page re-reads what it shows. For when pushed messages may have been
    /// lost; returns how many streams were ended.
    /// </summary>
    public int EndBrowserStreams()
    {
        lock (_gate)
        {
            foreach (var browser in _browsers)
            {
                browser.Writer.TryComplete();
            }

            return _browsers.Count;
        }
    }

    private void Broadcast(SseItem<object> item)
    {
        lock (_gate)
        {
            foreach (var browser in _browsers)
            {
                // A full queue would drop a message the page then never applies: end that browser's stream instead
                // (it reconnects and re-reads). Its queued messages are still written first.
                if (browser.Reader.Count >= BrowserQueue)
                {
                    if (browser.Writer.TryComplete())
                    {
                        LogBrowserBehind(logger, BrowserQueue);
                    }

                    continue;
                }

                browser.Writer.TryWrite(item);
            }
        }
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Live channel: reading the read models' version for a connecting browser failed; it connects without")]
    private static partial void LogConnectVersionFailed(ILogger logger, Exception exception);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Live channel: reading the fleet summary for a connecting browser failed; it gets the last one read")]
    private static partial void LogConnectSummaryFailed(ILogger logger, Exception exception);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Live channel: refreshing the fleet summary failed")]
    private static partial void LogRefreshFailed(ILogger logger, Exception exception);

    [LoggerMessage(Level = LogLevel.Information, Message = "Live channel: no 'pumpfleet-log' stream provider in this process; pushing the fleet summary only")]
    private static partial void LogNoStreams(ILogger logger);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Live channel: checking the stream subscriptions failed")]
    private static partial void LogSubscribeFailed(ILogger logger, Exception exception);

    [LoggerMessage(Level = LogLevel.Information, Message = "Live channel: the subscription to {Stream} was gone (removed by a silo that could not reach this client); subscribed again")]
    private static partial void LogResubscribed(ILogger logger, string stream);

    [LoggerMessage(Level = LogLevel.Information, Message = "Live channel: a browser fell {Messages} messages behind; its stream is ended (it reconnects and re-reads)")]
    private static partial void LogBrowserBehind(ILogger logger, int messages);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Live channel: the log stream reported an error")]
    private static partial void LogStreamError(ILogger logger, Exception exception);
}

/// <summary>
/// An anomaly change pushed to browsers (<c>event: anomaly</c>); fields of <c>GET /api/anomalies</c> items that the
/// event carries, and with <see cref="DashboardOptions.LiveTimings"/> the <see cref="LiveTrace"/> (left out otherwise).
/// </summary>
public sealed record LiveAnomaly(
    string Id, string? Serial, string Status, string? Kind, string? Severity, string? Summary, DateTimeOffset? DetectedAt,
    string? AcknowledgedBy, DateTimeOffset? AcknowledgedAt, string? ResolvedBy, DateTimeOffset? ResolvedAt, string? Note)
{
    /// <summary>Where the message was on its way (only with <see cref="DashboardOptions.LiveTimings"/>).</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public LiveTrace? Trace { get; init; }
}

/// <summary>
/// Unix-ms times of a pushed message: the log queue's read before the one that returned the event started, that read
/// started and returned (null when the delivery did not carry them; 0 for no previous read), the live feed received
/// it, this browser's stream took it for writing.
/// </summary>
public sealed record LiveTrace(long? PreviousReadStartedMs, long? ReadStartedMs, long? ReadMs, long FeedMs, long? WriteMs);

/// <summary>A committed event that can change a pump's status (<c>event: pump</c>): pages re-read that pump.</summary>
public sealed record LivePump(string Serial, string Type, DateTimeOffset ReceivedAt);
