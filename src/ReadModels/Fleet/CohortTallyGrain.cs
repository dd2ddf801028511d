using System.Globalization;
using Microsoft.Extensions.Logging;
using Orleans.Streams;
using Orleans.Streams.Core;
using PumpFleet.EventStore;
using PumpFleet.EventStore.Log;
using PumpFleet.Streaming;

namespace PumpFleet.ReadModels;

/// <summary>One cohort's sums in one log partition, as a tally grain reports them.</summary>
[GenerateSerializer, Immutable, Alias("pumpfleet.CohortCount.v1")]
public sealed record CohortCount(
    [property: Id(0)] string Model, [property: Id(1)] string Firmware, [property: Id(2)] string Lot,
    [property: Id(3)] long Pumps, [property: Id(4)] long SpanMicros, [property: Id(5)] long Alarms,
    [property: Id(6)] long CriticalAlarms, [property: Id(7)] long Anomalies);

/// <summary>The cohort tally of one log partition (key: the partition, "0"…"15").</summary>
[Alias("pumpfleet.ICohortTallyGrain")]
public interface ICohortTallyGrain : IGrainWithStringKey
{
    /// <summary>The partition's per-cohort sums as counted so far (from memory; no query).</summary>
    [Alias("GetCohorts")]
    Task<IReadOnlyList<CohortCount>> GetCohortsAsync();
}

/// <summary>
/// Keeps the cohort counts of one log partition from the <c>pumpfleet-log</c> stream (issue 14): implicitly subscribed
/// to the partition stream <c>("pumpfleet.log.partition", p)</c>, it applies each committed event to a
/// <see cref="CohortTally"/> (deduped by stream version, so the stream's at-least-once delivery counts each event once)
/// and saves the changed pumps to <c>pf_cohort_tally</c>, then its checkpoint <c>consumer:cohort-tally:{p}of16</c>,
/// at most every <see cref="FlushInterval"/> and when deactivated. An activation loads its saved pumps and reads the
/// partition from its checkpoint (the same gap-safe partition read as the stream's receivers) before taking deliveries,
/// so whatever the stream delivered to an activation that died unsaved is read again, never lost; a pump whose next
/// delivered version is not the next one applied has its missing versions read from the store first. The cohort
/// signal job asks the 16 grains for their sums instead of querying the read models.
/// </summary>
[ImplicitStreamSubscription(LogStreams.PartitionNamespace)]
public sealed partial class CohortTallyGrain(
    CohortTallyStore store, ILogPartitionReader log, ICheckpointStore checkpoints, IEventReader reader, ILogger<CohortTallyGrain> logger)
    : Grain, ICohortTallyGrain, IStreamSubscriptionObserver, IAsyncObserver<CommittedEvent>
{
    /// <summary>How often changed pumps and the checkpoint are saved.</summary>
    public static readonly TimeSpan FlushInterval = TimeSpan.FromSeconds(1);

    private const int PageSize = 1000;
    private readonly CohortTally _tally = new();
    private int _partition;
    private GlobalCheckpoint _position;
    private GlobalCheckpoint _saved;

    /// <summary>The checkpoint name of partition <paramref name="partition"/>'s tally.</summary>
    public static string CheckpointName(int partition) =>
        string.Create(CultureInfo.InvariantCulture, $"consumer:cohort-tally:{partition}of{LogPartitioning.Count}");

    /// <inheritdoc />
    public override async Task OnActivateAsync(CancellationToken cancellationToken)
    {
        _partition = int.Parse(this.GetPrimaryKeyString(), NumberStyles.None, CultureInfo.InvariantCulture);
        if (_partition is < 0 or >= LogPartitioning.Count)
        {
            throw new ArgumentOutOfRangeException(nameof(cancellationToken), _partition, "A tally grain's key is a log partition.");
        }

        foreach (var m in await store.LoadAsync(_partition, cancellationToken))
        {
            _tally.Load(m);
        }

        _position = _saved = await checkpoints.LoadCheckpointAsync(CheckpointName(_partition), cancellationToken);
        var read = 0;
        while (true)
        {
            var page = await log.ReadPartitionAsync(_partition, _position, PageSize, cancellationToken);
            foreach (var e in page.Events)
            {
                await ApplyAsync(e.StreamId, e.Version, e.Type, e.Data, e.DeviceTime, e.ClockSuspect, cancellationToken);
            }

            _position = page.Next;
            read += page.Events.Count;
            if (page.Events.Count < PageSize)
            {
                break;
            }
        }

        LogActivated(logger, _partition, _tally.Pumps, read);
        await FlushAsync(cancellationToken);
        this.RegisterGrainTimer(static (self, ct) => self.FlushAsync(ct), this, new GrainTimerCreationOptions
        {
            DueTime = FlushInterval,
            Period = FlushInterval,
            Interleave = false,
        });
        await base.OnActivateAsync(cancellationToken);
    }

    /// <inheritdoc />
    public override async Task OnDeactivateAsync(DeactivationReason reason, CancellationToken cancellationToken)
    {
        await FlushAsync(cancellationToken);
        await base.OnDeactivateAsync(reason, cancellationToken);
    }

    /// <inheritdoc />
    public async Task OnSubscribed(IStreamSubscriptionHandleFactory handleFactory)
    {
        ArgumentNullException.ThrowIfNull(handleFactory);
        await handleFactory.Create<CommittedEvent>().ResumeAsync(this);
    }

    /// <inheritdoc />
    public async Task OnNextAsync(CommittedEvent item, StreamSequenceToken? token = null)
    {
        ArgumentNullException.ThrowIfNull(item);
        // The activation's own read already covered everything up to its position in this partition's order.
        if (item.Checkpoint.CompareTo(_position) <= 0)
        {
            return;
        }

        await ApplyAsync(item.StreamId, item.Version, item.Type, item.Data, item.DeviceTime, item.ClockSuspect, CancellationToken.None);
        _position = item.Checkpoint;
    }

    /// <inheritdoc />
    public Task OnCompletedAsync() => Task.CompletedTask;

    /// <inheritdoc />
    public Task OnErrorAsync(Exception ex)
    {
        LogStreamError(logger, ex, _partition);
        return Task.CompletedTask;
    }

    /// <inheritdoc />
    public Task<IReadOnlyList<CohortCount>> GetCohortsAsync() => Task.FromResult<IReadOnlyList<CohortCount>>(
        [.. _tally.Totals.Select(t => new CohortCount(t.Key.Model, t.Key.Firmware, t.Key.Lot, t.Value.Pumps, t.Value.SpanMicros,
            t.Value.Alarms, t.Value.CriticalAlarms, t.Value.Anomalies))]);

    private async Task ApplyAsync(string streamId, long version, string type, string data, DateTimeOffset? deviceTime, bool clockSuspect, CancellationToken ct)
    {
        if (_tally.Apply(streamId, version, type, data, deviceTime, clockSuspect) != TallyOutcome.Gap)
        {
            return;
        }

        // Versions are dense per stream: a hole means this activation missed deliveries, so read them from the store.
        LogGap(logger, _partition, streamId, _tally.VersionOf(streamId), version);
        await foreach (var missing in reader.ReadStreamAsync(streamId, _tally.VersionOf(streamId), ct))
        {
            if (missing.Version >= version)
            {
                break;
            }

            _tally.Apply(missing.StreamId, missing.Version, missing.Type, missing.Data, missing.DeviceTime, missing.ClockSuspect);
        }

        if (_tally.Apply(streamId, version, type, data, deviceTime, clockSuspect) == TallyOutcome.Gap)
        {
            throw new InvalidOperationException($"Stream {streamId} has no events between version {_tally.VersionOf(streamId)} and {version}.");
        }
    }

    // Pumps first, then the checkpoint: a crash in between re-reads events whose versions are already saved, and those
    // are dropped. A failed save keeps the pumps marked and is retried at the next flush.
    private async Task FlushAsync(CancellationToken ct)
    {
        var position = _position;
        var changed = _tally.TakeChanged();
        try
        {
            await store.SaveAsync(_partition, changed, ct);
            if (position.CompareTo(_saved) > 0)
            {
                _saved = await log.AdvanceCheckpointAsync(CheckpointName(_partition), position, ct);
            }
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            _tally.MarkChanged(changed);
            LogFlushFailed(logger, e, _partition);
        }
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Cohort tally of partition {Partition}: {Pumps} pumps loaded, {Read} events read from the checkpoint")]
    private static partial void LogActivated(ILogger logger, int partition, int pumps, int read);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Cohort tally of partition {Partition}: {Stream} delivered at version {Version} after {Applied}; reading the missing versions from the store")]
    private static partial void LogGap(ILogger logger, int partition, string stream, long applied, long version);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Cohort tally of partition {Partition}: saving failed; retrying at the next flush")]
    private static partial void LogFlushFailed(ILogger logger, Exception exception, int partition);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Cohort tally of partition {Partition}: the log stream reported an error")]
    private static partial void LogStreamError(ILogger logger, Exception exception, int partition);
}
