using Microsoft.Extensions.Logging;
using Orleans.Streams;
using PumpFleet.EventStore;
using PumpFleet.EventStore.Log;

namespace PumpFleet.Streaming;

/// <summary>
/// Reads one partition of the log for its queue. It never writes events: it reads what the append path committed,
/// from its checkpoint on, below the xmin horizon (so a late commit is read later, never skipped). It queries only
/// when the partition was notified since its last read, when its last page was full, or when
/// <see cref="LogStreamOptions.PollInterval"/> has passed (a missed notification costs at most that), and, unless its last
/// page was full, no sooner than <see cref="LogStreamOptions.MinReadInterval"/> after its last read while the partition
/// is busy (<see cref="LogStreamOptions.CoalesceAboveEventsPerSecond"/>). Delivered items
/// (handed back by the cache once every consumer cursor passed them) move the checkpoint forward, saved at most every
/// <see cref="LogStreamOptions.CheckpointInterval"/> and on shutdown; a receiver that starts (on this silo or,
/// after a rebalance, on another) resumes from the saved checkpoint, so delivery is at least once.
/// </summary>
internal sealed partial class LogQueueReceiver(
    int partition,
    string checkpointName,
    ILogPartitionReader reader,
    ICheckpointStore checkpoints,
    LogNotificationListener notifications,
    LogStreamOptions options,
    TimeProvider time,
    LogStreamInstruments instruments,
    ILogger logger) : IQueueAdapterReceiver
{
    private GlobalCheckpoint _readPosition;
    private GlobalCheckpoint _delivered;
    private GlobalCheckpoint _saved;
    private DateTimeOffset _savedAt;
    private long _seenNotifications = -1;
    private DateTimeOffset _lastRead = DateTimeOffset.MinValue;
    private bool _moreWaiting = true;
    private DateTimeOffset _retryUntil = DateTimeOffset.MinValue;

    // The partition's event rate over its last full second of reads, which decides whether the read floor applies.
    private DateTimeOffset _rateWindowStart = DateTimeOffset.MinValue;
    private long _rateWindowEvents;
    private double _eventsPerSecond;

    // How long a notified partition that shows nothing yet (an older transaction still open holds the horizon) is
    // re-read at every agent turn before falling back to the poll interval.
    private static readonly TimeSpan HorizonRetry = TimeSpan.FromMilliseconds(250);

    // Token indexes of one event's deliveries: its pump's stream, its partition's, its partition's live stream.
    internal const int PumpKind = 0;
    internal const int PartitionKind = 1;
    internal const int LiveKind = 2;

    public async Task Initialize(TimeSpan timeout)
    {
        if (options.Notifications)
        {
            notifications.EnsureStarted();
        }
        using var cts = new CancellationTokenSource(timeout);
        _saved = await checkpoints.LoadCheckpointAsync(checkpointName, cts.Token);
        _readPosition = _saved;
        _delivered = _saved;
        _savedAt = time.GetUtcNow();
        LogStarted(logger, partition, _saved.ToString());
    }

#pragma warning disable CS0672, CS0618 // the legacy members are still abstract in 10.4.2; the token forms forward to them
    public Task<IList<IBatchContainer>> GetQueueMessagesAsync(int maxCount) => GetQueueMessagesAsync(maxCount, CancellationToken.None);

    public Task MessagesDeliveredAsync(IList<IBatchContainer> messages) => MessagesDeliveredAsync(messages, CancellationToken.None);
#pragma warning restore CS0672, CS0618

    public async Task<IList<IBatchContainer>> GetQueueMessagesAsync(int maxCount, CancellationToken cancellationToken)
    {
        var now = time.GetUtcNow();
        await SaveCheckpointIfDueAsync(now, force: false, cancellationToken);

        var heard = options.Notifications ? notifications.CountOf(partition) : _seenNotifications;
        var notified = heard != _seenNotifications;
        if (!notified && !_moreWaiting && now >= _retryUntil && now - _lastRead < options.PollInterval)
        {
            return [];
        }

        // Under load, coalesce: the notifications heard meanwhile stay unseen and are read together when the floor has
        // passed (a full last page means catching up, which reads on at every turn).
        if (!_moreWaiting && _eventsPerSecond >= options.CoalesceAboveEventsPerSecond && now - _lastRead < options.MinReadInterval)
        {
            return [];
        }

        _seenNotifications = heard;
        // maxCount counts deliveries, and an event is delivered on up to three streams (its pump's, its partition's, live).
        var limit = maxCount < 0 ? options.PageSize : Math.Clamp(maxCount / 2, 1, options.PageSize);
        // The live path: what the projections may take from an earlier read (EventStore:TailCache), the receiver reads now.
        var page = await reader.ReadPartitionLatestAsync(partition, _readPosition, limit, cancellationToken);
        var readAt = time.GetUtcNow();
        var previousRead = _lastRead;
        _lastRead = now;
        // A notified partition that shows nothing new is held back by an older open transaction (the horizon):
        // look again at the next turn rather than waiting for the poll interval.
        _moreWaiting = page.Events.Count == limit;
        if (notified && page.Events.Count == 0)
        {
            _retryUntil = now + HorizonRetry;
        }
        if (page.Events.Count == 0)
        {
            return [];
        }

        _readPosition = page.Next;
        CountRate(now, page.Events.Count);
        instruments.OnRead(partition, page.Events.Count);
        return ToBatches(partition, page.Events.Select(CommittedEvent.From), options.PumpStreams, (previousRead, now, readAt));
    }

    private void CountRate(DateTimeOffset now, int events)
    {
        if (now - _rateWindowStart >= TimeSpan.FromSeconds(1))
        {
            // A window that ended long ago (a quiet spell) spreads its events over the whole gap.
            _eventsPerSecond = _rateWindowStart == DateTimeOffset.MinValue ? 0 : _rateWindowEvents / (now - _rateWindowStart).TotalSeconds;
            _rateWindowStart = now;
            _rateWindowEvents = 0;
        }

        _rateWindowEvents += events;
    }

    /// <summary>
    /// One page as deliveries: one container per pump stream in the page (when <paramref name="pumpStreams"/>), one for
    /// the partition's stream and, when the page holds any, one for the partition's live events; each carries its
    /// stream's events in the log's order, and the containers are in the order of their tokens (what the queue cache
    /// needs to find a token). The live container carries <paramref name="read"/> (when the previous read started, when
    /// this one started and returned), for the commit → browser breakdown.
    /// </summary>
    internal static List<IBatchContainer> ToBatches(
        int partition, IEnumerable<CommittedEvent> page, bool pumpStreams = true, (DateTimeOffset Previous, DateTimeOffset Started, DateTimeOffset Returned)? read = null)
    {
        var all = new List<CommittedEvent>();
        var live = new List<CommittedEvent>();
        var byStream = new Dictionary<string, List<CommittedEvent>>(StringComparer.Ordinal);
        foreach (var e in page)
        {
            all.Add(e);
            if (!byStream.TryGetValue(e.StreamId, out var events))
            {
                byStream[e.StreamId] = events = [];
            }

            events.Add(e);
            if (LogStreams.IsLive(e.Type))
            {
                live.Add(e);
            }
        }

        var batches = new List<IBatchContainer>(byStream.Count + 2);
        if (all.Count == 0)
        {
            return batches;
        }

        if (pumpStreams)
        {
            foreach (var (stream, events) in byStream)
            {
                batches.Add(new LogBatchContainer(LogStreams.ForStream(stream), events, PumpKind));
            }
        }

        batches.Add(new LogBatchContainer(LogStreams.ForPartition(partition), all, PartitionKind));
        if (live.Count > 0)
        {
            batches.Add(new LogBatchContainer(LogStreams.ForLive(partition), live, LiveKind)
            {
                ReadStartedMs = read?.Started.ToUnixTimeMilliseconds() ?? 0,
                ReadMs = read?.Returned.ToUnixTimeMilliseconds() ?? 0,
                PreviousReadStartedMs = read is { Previous: var previous } && previous > DateTimeOffset.UnixEpoch ? previous.ToUnixTimeMilliseconds() : 0,
            });
        }

        batches.Sort(static (a, b) => a.SequenceToken.CompareTo(b.SequenceToken));
        ((LogBatchContainer)batches[^1]).PageEnd = all[^1].Checkpoint;
        return batches;
    }

    public async Task MessagesDeliveredAsync(IList<IBatchContainer> messages, CancellationToken cancellationToken)
    {
        foreach (var m in messages)
        {
            // The cache hands containers back in its order, so a page is delivered when its last container is.
            if (m is LogBatchContainer { PageEnd: { } end } && end.CompareTo(_delivered) > 0)
            {
                _delivered = end;
            }
        }

        await SaveCheckpointIfDueAsync(time.GetUtcNow(), force: false, cancellationToken);
    }

    public async Task Shutdown(TimeSpan timeout)
    {
        using var cts = new CancellationTokenSource(timeout);
        try
        {
            await SaveCheckpointIfDueAsync(time.GetUtcNow(), force: true, cts.Token);
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            // The next owner resumes from the older saved checkpoint: consumers see some events again, none lost.
            LogCheckpointFailed(logger, e, partition);
        }
    }

    private async Task SaveCheckpointIfDueAsync(DateTimeOffset now, bool force, CancellationToken ct)
    {
        if (_delivered.CompareTo(_saved) <= 0 || (!force && now - _savedAt < options.CheckpointInterval))
        {
            return;
        }

        // Forward only: if another silo already owns this queue and went further, its position stays.
        _saved = await reader.AdvanceCheckpointAsync(checkpointName, _delivered, ct);
        _savedAt = now;
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Log partition {Partition}: receiver started at checkpoint {Checkpoint}")]
    private static partial void LogStarted(ILogger logger, int partition, string checkpoint);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Log partition {Partition}: saving the checkpoint at shutdown failed")]
    private static partial void LogCheckpointFailed(ILogger logger, Exception exception, int partition);
}
