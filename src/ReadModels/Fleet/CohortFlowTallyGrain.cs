using System.Globalization;
using Microsoft.Extensions.Logging;
using Orleans.Streams;
using Orleans.Streams.Core;
using PumpFleet.Domain.Detection.CohortFlow;
using PumpFleet.EventStore;
using PumpFleet.EventStore.Log;
using PumpFleet.Streaming;

namespace PumpFleet.ReadModels;

/// <summary>The refill-flow samples of one log partition (key: the partition, "0"…"15").</summary>
[Alias("pumpfleet.ICohortFlowTallyGrain")]
public interface ICohortFlowTallyGrain : IGrainWithStringKey
{
    /// <summary>
    /// The partition's pumps' last complete refill-cycle samples closed at or after <paramref name="since"/>, as kept
    /// so far (from memory; no query).
    /// </summary>
    [Alias("GetSamples")]
    Task<IReadOnlyList<FlowSample>> GetSamplesAsync(DateTimeOffset since);
}

/// <summary>One pump's refill-flow sample as a flow tally grain reports it (a <see cref="RefillFlowSample"/> on the wire).</summary>
[GenerateSerializer, Immutable, Alias("pumpfleet.FlowSample.v1")]
public sealed record FlowSample(
    [property: Id(0)] string Serial, [property: Id(1)] string? Model, [property: Id(2)] string? Firmware, [property: Id(3)] string? Lot,
    [property: Id(4)] DateTimeOffset At, [property: Id(5)] double Factor, [property: Id(6)] double CycleMl)
{
    /// <summary>The domain sample.</summary>
    public RefillFlowSample ToSample() => new(Serial, Model, Firmware, Lot, At, Factor, CycleMl);
}

/// <summary>
/// Keeps each pump's last complete refill-cycle flow factor of one log partition from the <c>pumpfleet-log</c> stream,
/// for the <c>cohort-flow-deviation</c> job (issue 16; the same design as <see cref="CohortTallyGrain"/>): implicitly
/// subscribed to the partition stream, it applies each committed event to a <see cref="CohortFlowTally"/> (deduped by
/// stream version), and saves the changed pumps to <c>pf_cohort_flow</c>, then its checkpoint
/// <c>consumer:cohort-flow:{p}of16</c>, at most every <see cref="FlushInterval"/> and when deactivated. An activation
/// loads its saved pumps and reads the partition from its checkpoint before taking deliveries, so nothing a dead
/// activation had not saved is lost; a pump whose delivered version skips has the missing versions read from the store
/// first. <c>CohortFlowJob</c> asks the 16 grains for their samples instead of scanning <c>pf_pump_status</c>.
/// </summary>
[ImplicitStreamSubscription(LogStreams.PartitionNamespace)]
public sealed partial class CohortFlowTallyGrain(
    CohortFlowTallyStore store, ILogPartitionReader log, ICheckpointStore checkpoints, IEventReader reader, ILogger<CohortFlowTallyGrain> logger)
    : Grain, ICohortFlowTallyGrain, IStreamSubscriptionObserver, IAsyncObserver<CommittedEvent>
{
    /// <summary>How often changed pumps and the checkpoint are saved.</summary>
    public static readonly TimeSpan FlushInterval = TimeSpan.FromSeconds(1);

    private const int PageSize = 1000;
    private readonly CohortFlowTally _tally = new();
    private int _partition;
    private GlobalCheckpoint _position;
    private GlobalCheckpoint _saved;

    /// <summary>The checkpoint name of partition <paramref name="partition"/>'s flow tally.</summary>
    public static string CheckpointName(int partition) =>
        string.Create(CultureInfo.InvariantCulture, $"consumer:cohort-flow:{partition}of{LogPartitioning.Count}");

    /// <inheritdoc />
    public override async Task OnActivateAsync(CancellationToken cancellationToken)
    {
        _partition = int.Parse(this.GetPrimaryKeyString(), NumberStyles.None, CultureInfo.InvariantCulture);
        if (_partition is < 0 or >= LogPartitioning.Count)
        {
            throw new ArgumentOutOfRangeException(nameof(cancellationToken), _partition, "A flow tally grain's key is a log partition.");
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
                await ApplyAsync(e.StreamId, e.Version, e.Type, e.Data, e.ClockSuspect, cancellationToken);
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

        await ApplyAsync(item.StreamId, item.Version, item.Type, item.Data, item.ClockSuspect, CancellationToken.None);
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
    public Task<IReadOnlyList<FlowSample>> GetSamplesAsync(DateTimeOffset since) => Task.FromResult<IReadOnlyList<FlowSample>>(
        [.. _tally.Samples(since).Select(s => new FlowSample(s.Serial, s.Model, s.Firmware, s.Lot, s.At, s.Factor, s.CycleMl))]);

    private async Task ApplyAsync(string streamId, long version, string type, string data, bool clockSuspect, CancellationToken ct)
    {
        if (_tally.Apply(streamId, version, type, data, clockSuspect) != TallyOutcome.Gap)
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

            _tally.Apply(missing.StreamId, missing.Version, missing.Type, missing.Data, missing.ClockSuspect);
        }

        if (_tally.Apply(streamId, version, type, data, clockSuspect) == TallyOutcome.Gap)
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

    [LoggerMessage(Level = LogLevel.Information, Message = "Cohort flow tally of partition {Partition}: {Pumps} pumps loaded, {Read} events read from the checkpoint")]
    private static partial void LogActivated(ILogger logger, int partition, int pumps, int read);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Cohort flow tally of partition {Partition}: {Stream} delivered at version {Version} after {Applied}; reading the missing versions from the store")]
    private static partial void LogGap(ILogger logger, int partition, string stream, long applied, long version);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Cohort flow tally of partition {Partition}: saving failed; retrying at the next flush")]
    private static partial void LogFlushFailed(ILogger logger, Exception exception, int partition);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Cohort flow tally of partition {Partition}: the log stream reported an error")]
    private static partial void LogStreamError(ILogger logger, Exception exception, int partition);
}
