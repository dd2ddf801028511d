using System.Globalization;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Orleans.Streams;
using Orleans.Streams.Core;
using PumpFleet.EventStore;
using PumpFleet.EventStore.Log;
using PumpFleet.Streaming;

namespace PumpFleet.ReadModels;

/// <summary>
/// A tally of one log partition kept from the <c>pumpfleet-log</c> stream (issue 14; key: the partition, "0"…"15").
/// A concrete grain adds <c>[ImplicitStreamSubscription(LogStreams.PartitionNamespace)]</c>, so it is subscribed to
/// the partition stream <c>("pumpfleet.log.partition", p)</c>, and applies each committed event to its tally (deduped by
/// stream version, so the stream's at-least-once delivery counts each event once), then saves the changed pumps and
/// then its checkpoint (<see cref="PartitionTallies.CheckpointName"/>) at most every
/// <see cref="PartitionTallyOptions.FlushInterval"/> and when deactivated.
/// An activation loads its saved pumps and reads the partition from its checkpoint (the same gap-safe partition read as
/// the stream's receivers) before taking deliveries, so whatever the stream delivered to an activation that died
/// unsaved is read again, never lost; a pump whose next delivered version is not the next one applied has its missing
/// versions read from the store first.
/// </summary>
/// <typeparam name="TTally">The partition's in-memory state.</typeparam>
/// <typeparam name="TMember">What is saved per pump.</typeparam>
public abstract class PartitionTallyGrain<TTally, TMember>(
    IPartitionTallyStore<TMember> store, ILogPartitionReader log, ICheckpointStore checkpoints, IEventReader reader, IOptions<PartitionTallyOptions> options,
    ILogger logger)
    : Grain, IStreamSubscriptionObserver, IAsyncObserver<CommittedEvent>
    where TTally : IPartitionTally<TMember>, new()
{
    private const int PageSize = 1000;
    private GlobalCheckpoint _position;
    private GlobalCheckpoint _saved;

    /// <summary>The tally (read by the concrete grain's queries; applied to only here).</summary>
    protected TTally Tally { get; } = new();

    /// <summary>The log partition this activation keeps.</summary>
    protected int Partition { get; private set; }

    /// <summary>The tally's name in logs (e.g. "Cohort tally").</summary>
    protected abstract string Name { get; }

    /// <summary>The checkpoint of the tally's kind, e.g. <c>cohort-tally</c> for <c>consumer:cohort-tally:3of16</c>.</summary>
    protected abstract string Kind { get; }

    /// <inheritdoc />
    public override async Task OnActivateAsync(CancellationToken cancellationToken)
    {
        Partition = int.Parse(this.GetPrimaryKeyString(), NumberStyles.None, CultureInfo.InvariantCulture);
        if (Partition is < 0 or >= LogPartitioning.Count)
        {
            throw new ArgumentOutOfRangeException(nameof(cancellationToken), Partition, $"A {Name.ToLowerInvariant()} grain's key is a log partition.");
        }

        foreach (var m in await store.LoadAsync(Partition, cancellationToken))
        {
            Tally.Load(m);
        }

        _position = _saved = await checkpoints.LoadCheckpointAsync(PartitionTallies.CheckpointName(Kind, Partition), cancellationToken);
        var read = 0;
        while (true)
        {
            var page = await log.ReadPartitionAsync(Partition, _position, PageSize, cancellationToken);
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

        PartitionTallyLog.Activated(logger, Name, Partition, Tally.Pumps, read);
        await FlushAsync(cancellationToken);
        this.RegisterGrainTimer(static (self, ct) => self.FlushAsync(ct), this, new GrainTimerCreationOptions
        {
            DueTime = options.Value.FlushInterval,
            Period = options.Value.FlushInterval,
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
        PartitionTallyLog.StreamError(logger, ex, Name, Partition);
        return Task.CompletedTask;
    }

    private async Task ApplyAsync(string streamId, long version, string type, string data, DateTimeOffset? deviceTime, bool clockSuspect, CancellationToken ct)
    {
        if (Tally.Apply(streamId, version, type, data, deviceTime, clockSuspect) != TallyOutcome.Gap)
        {
            return;
        }

        // Versions are dense per stream: a hole means this activation missed deliveries, so read them from the store.
        PartitionTallyLog.Gap(logger, Name, Partition, streamId, Tally.VersionOf(streamId), version);
        await foreach (var missing in reader.ReadStreamAsync(streamId, Tally.VersionOf(streamId), ct))
        {
            if (missing.Version >= version)
            {
                break;
            }

            Tally.Apply(missing.StreamId, missing.Version, missing.Type, missing.Data, missing.DeviceTime, missing.ClockSuspect);
        }

        if (Tally.Apply(streamId, version, type, data, deviceTime, clockSuspect) == TallyOutcome.Gap)
        {
            throw new InvalidOperationException($"Stream {streamId} has no events between version {Tally.VersionOf(streamId)} and {version}.");
        }
    }

    // Pumps first, then the checkpoint: a crash in between re-reads events whose versions are already saved, and those
    // are dropped. A failed save keeps the pumps marked and is retried at the next flush.
    private async Task FlushAsync(CancellationToken ct)
    {
        var position = _position;
        var changed = Tally.TakeChanged();
        try
        {
            await store.SaveAsync(Partition, changed, ct);
            if (position.CompareTo(_saved) > 0)
            {
                _saved = await log.AdvanceCheckpointAsync(PartitionTallies.CheckpointName(Kind, Partition), position, ct);
            }
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            Tally.MarkChanged(changed);
            PartitionTallyLog.FlushFailed(logger, e, Name, Partition);
        }
    }
}

/// <summary>What every partition tally shares.</summary>
public static class PartitionTallies
{
    /// <summary>The checkpoint name of <paramref name="kind"/>'s tally of partition <paramref name="partition"/>.</summary>
    public static string CheckpointName(string kind, int partition) =>
        string.Create(CultureInfo.InvariantCulture, $"consumer:{kind}:{partition}of{LogPartitioning.Count}");
}

/// <summary>The partition tally grains' log lines (outside the generic base, where the logging generator cannot go).</summary>
internal static partial class PartitionTallyLog
{
    [LoggerMessage(Level = LogLevel.Information, Message = "{Tally} of partition {Partition}: {Pumps} pumps loaded, {Read} events read from the checkpoint")]
    public static partial void Activated(ILogger logger, string tally, int partition, int pumps, int read);

    [LoggerMessage(Level = LogLevel.Warning, Message = "{Tally} of partition {Partition}: {Stream} delivered at version {Version} after {Applied}; reading the missing versions from the store")]
    public static partial void Gap(ILogger logger, string tally, int partition, string stream, long applied, long version);

    [LoggerMessage(Level = LogLevel.Warning, Message = "{Tally} of partition {Partition}: saving failed; retrying at the next flush")]
    public static partial void FlushFailed(ILogger logger, Exception exception, string tally, int partition);

    [LoggerMessage(Level = LogLevel.Warning, Message = "{Tally} of partition {Partition}: the log stream reported an error")]
    public static partial void StreamError(ILogger logger, Exception exception, string tally, int partition);
}
