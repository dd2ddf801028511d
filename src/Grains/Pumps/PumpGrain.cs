using System.Text.Json;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using PumpFleet.Contracts.Events;
using PumpFleet.Contracts.Grains;
using PumpFleet.Contracts.Json;
using PumpFleet.Contracts.Views;
using PumpFleet.Domain.Detection;
using PumpFleet.Domain.Pumps;
using PumpFleet.EventStore;

namespace PumpFleet.Grains.Pumps;

/// <summary>
/// One virtual actor per pump serial: the digital twin. Event sourcing is done here explicitly rather than with
/// JournaledGrain, because JournaledGrain's ConfirmEvents retries a failed write forever and never fails the call
/// (notes/tech.md §2), while the protocol needs a failed append to fail the call so the gateway does not acknowledge.
/// </summary>
public sealed partial class PumpGrain(
    IEventStore store, IOptions<PumpGrainOptions> options, PumpInstruments instruments, ILogger<PumpGrain> logger,
    IOptions<AnomalyDetectionOptions> detection, TimeProvider time)
    : Grain, IPumpIngestGrain, IPumpQueryGrain, IPumpAnomalyGrain, IPumpMonitorGrain
{
    private PumpState _state = new();
    private long _snapshotVersion;

    private string Serial => this.GetPrimaryKeyString();

    /// <inheritdoc />
    public override async Task OnActivateAsync(CancellationToken cancellationToken)
    {
        try
        {
            _state = await LoadAsync(cancellationToken);
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            LogLoadFailed(e, Serial);
            throw new PumpStorageException($"Loading pump {Serial} failed ({e.GetType().Name}: {e.Message}).");
        }

        instruments.OnActivated();
        await base.OnActivateAsync(cancellationToken);
    }

    /// <inheritdoc />
    public override Task OnDeactivateAsync(DeactivationReason reason, CancellationToken cancellationToken)
    {
        instruments.OnDeactivated();
        return base.OnDeactivateAsync(reason, cancellationToken);
    }

    /// <inheritdoc />
    public async Task<IngestResult> IngestAsync(IngestBatch batch)
    {
        ArgumentNullException.ThrowIfNull(batch);
        var plan = Plan(batch);
        if (plan.Events.Count > 0)
        {
            try
            {
                await AppendAndApplyAsync(plan.Events, batch.HubId, batch.MessageId);
            }
            catch (WrongExpectedVersionException)
            {
                // Another activation (a rare duplicate during a membership change) wrote first: re-read and decide again.
                LogConcurrentWriter(Serial);
                _state = await LoadAsync(CancellationToken.None);
                plan = Plan(batch);
                if (plan.Events.Count > 0)
                {
                    await AppendAndApplyAsync(plan.Events, batch.HubId, batch.MessageId);
                }
            }

            await DetectAsync();
        }

        return new IngestResult
        {
            CommittedSeq = _state.LastSeq,
            Stored = plan.AcceptedDeviceEvents,
            Duplicates = plan.Duplicates,
            Rejections = plan.Rejections,
        };
    }

    /// <inheritdoc />
    public async Task PairAsync(string hubId, string by)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(hubId);
        var now = DateTimeOffset.UtcNow;
        if (PumpDecisions.Pair(_state, hubId, by, now) is not { } paired)
        {
            return;
        }

        await AppendAndApplyAsync([new PlannedEvent(paired, Guid.NewGuid(), null, now, false)], hubId, null);
    }

    /// <inheritdoc />
    public Task<PumpView> GetStateAsync() => Task.FromResult(_state.ToView());

    /// <inheritdoc />
    public async Task<PumpView> GetStateAsOfAsync(DateTimeOffset asOf)
    {
        var state = new PumpState { Serial = Serial };
        await foreach (var stored in store.ReadStreamAsync(Serial))
        {
            var e = EventJson.Deserialize(stored.Type, stored.Data);
            var effective = e is DeviceEvent && stored.ClockSuspect ? stored.ReceivedAt : e.At;
            if (effective <= asOf)
            {
                state.Apply(e, Envelope(stored));
            }
        }

        return state.ToView();
    }

    /// <inheritdoc />
    public async Task<bool> AcknowledgeAnomalyAsync(string anomalyId, string by, string? note)
    {
        var now = DateTimeOffset.UtcNow;
        if (PumpDecisions.Acknowledge(_state, anomalyId, by, note, now) is not { } acknowledged)
        {
            return false;
        }

        await AppendAndApplyAsync([new PlannedEvent(acknowledged, Guid.NewGuid(), null, now, false)], null, null);
        return true;
    }

    /// <inheritdoc />
    public async Task<bool> ResolveAnomalyAsync(string anomalyId, string by, string? note)
    {
        var now = DateTimeOffset.UtcNow;
        if (PumpDecisions.Resolve(_state, anomalyId, by, note, now) is not { } resolved)
        {
            return false;
        }

        await AppendAndApplyAsync([new PlannedEvent(resolved, Guid.NewGuid(), null, now, false)], null, null);
        return true;
    }

    /// <inheritdoc />
    public async Task<bool> MarkSilentAsync(DateTimeOffset lastSeenAt, TimeSpan window)
    {
        // The one detector on wall time: silence is about the platform not hearing, not about event time.
        var now = time.GetUtcNow();
        if (PumpDecisions.MarkSilent(_state, lastSeenAt, window, now) is not { } e)
        {
            return false;
        }

        await AppendAndApplyAsync([new PlannedEvent(e, AnomalyEngine.EventId(e), null, now, false)], null, null);
        LogAnomaly(Serial, e.Kind, e.Severity, e.AnomalyId);
        return true;
    }

    /// <summary>
    /// Runs the detectors on the state after a batch and appends what they decide: a second append, only when
    /// something changed. A failure here fails the call like any append; the batch is then already stored, so the
    /// hub's resend is a duplicate and the next batch decides again.
    /// </summary>
    private async Task DetectAsync()
    {
        using var activity = GrainsTracing.Source.StartActivity("detect");
        if (!detection.Value.Enabled)
        {
            return;
        }

        var decided = AnomalyEngine.Evaluate(_state, detection.Value);
        if (decided.Count == 0)
        {
            return;
        }

        var receivedAt = _state.LastSeenAt ?? time.GetUtcNow();
        await AppendAndApplyAsync([.. decided.Select(e => new PlannedEvent(e, AnomalyEngine.EventId(e), null, receivedAt, false))], null, null);
        foreach (var e in decided.OfType<AnomalyDetected>())
        {
            LogAnomaly(Serial, e.Kind, e.Severity, e.AnomalyId);
        }
    }

    /// <summary>Appends events in one round trip, then folds them. On failure the activation is dropped and the call fails.</summary>
    private async Task AppendAndApplyAsync(IReadOnlyList<PlannedEvent> events, string? hubId, string? messageId)
    {
        var metadata = hubId is null && messageId is null
            ? null
            : JsonSerializer.Serialize(new EventMetadata(hubId, messageId), EventJson.Options);
        var rows = new EventToAppend[events.Count];
        for (var i = 0; i < events.Count; i++)
        {
            var p = events[i];
            rows[i] = new EventToAppend(p.EventId, EventTypes.NameOf(p.Event), EventJson.Serialize(p.Event), p.Seq,
                p.Event is DeviceEvent d ? d.At : null, p.ReceivedAt, p.ClockSuspect, metadata);
        }

        AppendResult result;
        try
        {
            result = await store.AppendAsync(Serial, _state.Version, rows);
        }
        catch (WrongExpectedVersionException)
        {
            throw;
        }
        catch (Exception e)
        {
            // The commit may or may not have happened (ambiguous). Drop this activation so the next call re-reads
            // the stream: resent events are then recognised by seq, and nothing is stored twice.
            LogAppendFailed(e, Serial, events.Count);
            DeactivateOnIdle();
            throw new PumpStorageException($"Storing {events.Count} events of pump {Serial} failed ({e.GetType().Name}: {e.Message}); nothing is acknowledged, resend.");
        }

        if (result.AlreadyStored)
        {
            _state = await LoadAsync(CancellationToken.None);
            return;
        }

        using var fold = GrainsTracing.Source.StartActivity("fold");
        var version = _state.Version;
        foreach (var p in events)
        {
            _state.Apply(p.Event, new EventEnvelope(++version, p.Seq, p.ReceivedAt, p.ClockSuspect));
        }

        fold?.Stop();

        if (_state.Version - _snapshotVersion >= options.Value.SnapshotEvery)
        {
            await SaveSnapshotAsync();
        }
    }

    private async Task SaveSnapshotAsync()
    {
        try
        {
            var json = JsonSerializer.Serialize(_state, SnapshotJson.Options);
            await store.SaveSnapshotAsync(new Snapshot(Serial, _state.Version, PumpState.SchemaVersion, json));
            _snapshotVersion = _state.Version;
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            // A missing snapshot only makes the next activation replay more events; the events are safe.
            LogSnapshotFailed(e, Serial);
        }
    }

    private async Task<PumpState> LoadAsync(CancellationToken ct)
    {
        var state = new PumpState { Serial = Serial };
        _snapshotVersion = 0;
        var snapshot = await store.LoadSnapshotAsync(Serial, ct);
        if (snapshot is { SchemaVersion: PumpState.SchemaVersion })
        {
            state = JsonSerializer.Deserialize<PumpState>(snapshot.State, SnapshotJson.Options) ?? state;
            state.Serial = Serial;
            _snapshotVersion = snapshot.Version;
        }

        await foreach (var stored in store.ReadStreamAsync(Serial, state.Version, ct))
        {
            state.Apply(EventJson.Deserialize(stored.Type, stored.Data), Envelope(stored));
        }

        return state;
    }

    private static EventEnvelope Envelope(StoredEvent s) => new(s.Version, s.Seq, s.ReceivedAt, s.ClockSuspect);

    [LoggerMessage(Level = LogLevel.Error, Message = "Append of {Count} events for pump {Serial} failed; the call fails and the activation is dropped")]
    private partial void LogAppendFailed(Exception e, string serial, int count);

    [LoggerMessage(Level = LogLevel.Error, Message = "Loading pump {Serial} from the event store failed; the activation fails")]
    private partial void LogLoadFailed(Exception e, string serial);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Snapshot of pump {Serial} failed; it will be retried at the next threshold")]
    private partial void LogSnapshotFailed(Exception e, string serial);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Pump {Serial}: another writer appended first; state re-read and the batch re-planned")]
    private partial void LogConcurrentWriter(string serial);

    [LoggerMessage(Level = LogLevel.Information, Message = "Pump {Serial}: {Severity} {Kind} anomaly {AnomalyId} opened")]
    private partial void LogAnomaly(string serial, string kind, string severity, string anomalyId);

    private sealed record EventMetadata(string? HubId, string? MessageId);

    // The planner is pure domain code without tracing; its span is opened here, where the grain calls it.
    private IngestPlan Plan(IngestBatch batch)
    {
        using var activity = GrainsTracing.Source.StartActivity("plan");
        return IngestPlanner.Plan(_state, batch, Guid.NewGuid);
    }
}
