using System.Diagnostics;
using System.Text.Json;
using System.Text.Json.Serialization;
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
/// <remarks>
/// Random placement, not Orleans' default resource-optimised placement: pumps are many, small and alike, so spreading
/// them evenly from the first call is what keeps a silo failure to its share of the fleet. The default prefers the
/// silo that received the call while the others' load statistics look alike, so a burst of new activations (a hub
/// reconnect storm, a fresh cluster) could land on one silo; FailoverTests saw all of its pumps on one of three.
/// </remarks>
[Orleans.Placement.RandomPlacement]
public sealed partial class PumpGrain(PumpGrainServices services, ILogger<PumpGrain> logger)
    : Grain, IPumpIngestGrain, IPumpQueryGrain, IPumpAnomalyGrain, IPumpMonitorGrain, ICohortSignalGrain, IRemindable
{
    // The services come in one shared holder (PumpGrainServices: one reference per activation instead of five).
    private IEventStore Store => services.Store;

    private IOptions<PumpGrainOptions> Options => services.Options;

    private PumpInstruments Instruments => services.Instruments;

    private IOptions<AnomalyDetectionOptions> Detection => services.Detection;

    private TimeProvider Time => services.Time;

    /// <summary>The reminder that re-evaluates a silent pump on time; it ends itself once the pump is heard from.</summary>
    public const string ReevaluateReminder = "reevaluate-silent";

    private PumpState _state = new();
    private long _snapshotVersion;

    // True while _state holds events folded ahead of their commit (the ingest path folds first, see
    // AppendIngestAsync) and the commit failed: the next call re-reads the stream before it decides anything.
    private bool _stale;

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

        Instruments.OnActivated();
        await base.OnActivateAsync(cancellationToken);
    }

    /// <inheritdoc />
    public override Task OnDeactivateAsync(DeactivationReason reason, CancellationToken cancellationToken)
    {
        Instruments.OnDeactivated();
        return base.OnDeactivateAsync(reason, cancellationToken);
    }

    /// <inheritdoc />
    public async Task<IngestResult> IngestAsync(IngestBatch batch)
    {
        ArgumentNullException.ThrowIfNull(batch);
        await EnsureCurrentAsync();
        var plan = Plan(batch);
        if (plan.Events.Count > 0)
        {
            try
            {
                await AppendIngestAsync(plan.Events, batch.HubId, batch.MessageId);
            }
            catch (WrongExpectedVersionException)
            {
                // Another activation (a rare duplicate during a membership change) wrote first: the state was re-read; decide again.
                plan = Plan(batch);
                if (plan.Events.Count > 0)
                {
                    await AppendIngestAsync(plan.Events, batch.HubId, batch.MessageId);
                }
            }
        }

        return new IngestResult
        {
            CommittedSeq = _state.Seqs.Watermark,
            HighestSeq = _state.LastSeq,
            Missing = _state.Seqs.FirstMissing(),
            Stored = plan.AcceptedDeviceEvents,
            Duplicates = plan.Duplicates,
            Rejections = plan.Rejections,
        };
    }

    /// <inheritdoc />
    public async Task PairAsync(string hubId, string by)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(hubId);
        await DecideOnceMoreOnConflictAsync(async () =>
        {
            var now = Time.GetUtcNow();
            if (PumpDecisions.Pair(_state, hubId, by, now) is not { } paired)
            {
                return false;
            }

            await AppendAndApplyAsync([new PlannedEvent(paired, Guid.NewGuid(), null, now, false)], hubId, null);
            return true;
        });
    }

    /// <summary>
    /// Runs a decision and its append; when another writer appended first (a stale activation), the state has been
    /// re-read by then, so the decision is made once more on the current state, as ingest does.
    /// </summary>
    private async Task<T> DecideOnceMoreOnConflictAsync<T>(Func<Task<T>> decideAndAppend)
    {
        await EnsureCurrentAsync();
        try
        {
            return await decideAndAppend();
        }
        catch (WrongExpectedVersionException)
        {
            return await decideAndAppend();
        }
    }

    /// <inheritdoc />
    public async Task<PumpView> GetStateAsync()
    {
        await EnsureCurrentAsync();
        return _state.ToView();
    }

    /// <summary>Re-reads the stream when a failed commit left events folded that are not stored.</summary>
    private async Task EnsureCurrentAsync()
    {
        if (_stale)
        {
            _state = await LoadAsync(CancellationToken.None);
            _stale = false;
        }
    }

    /// <summary>
    /// The ingest path in one commit: folds the batch, runs the detectors on the folded state, folds what they decide,
    /// and appends the batch, the decisions and (when due) the snapshot in one transaction (issue 15: one commit per
    /// message, not three). The state is ahead of the store until the commit returns; a failed commit re-reads it.
    /// </summary>
    private async Task AppendIngestAsync(IReadOnlyList<PlannedEvent> events, string hubId, string? messageId)
    {
        var expected = _state.Version;
        _stale = true;
        Fold(events);
        if (_state.NeedsRebuild)
        {
            // A device event from before the fold window: the replay reads the stored stream, so this rare case takes
            // the two-commit path (store the batch, replay, then detect and store the decisions).
            _state = await LoadAsync(CancellationToken.None);
            _stale = false;
            await AppendAndApplyAsync(events, hubId, messageId);
            await DecideOnceMoreOnConflictAsync(DetectAsync);
            return;
        }

        IReadOnlyList<PlannedEvent> decisions = [];
        using (GrainsTracing.Source.StartActivity("detect"))
        {
            if (Detection.Value.Enabled)
            {
                var decided = AnomalyEngine.Evaluate(_state, Detection.Value);
                if (decided.Count > 0)
                {
                    var receivedAt = _state.LastSeenAt ?? Time.GetUtcNow();
                    decisions = [.. decided.Select(e => new PlannedEvent(e, AnomalyEngine.EventId(e), null, receivedAt, false))];
                    Fold(decisions);
                }
            }
        }

        var rows = new EventToAppend[events.Count + decisions.Count];
        ToRows(events, hubId, messageId, rows, 0);
        ToRows(decisions, null, null, rows, events.Count);
        var snapshot = _state.Version - _snapshotVersion >= Options.Value.SnapshotEvery ? SnapshotOfState() : null;
        AppendResult result;
        try
        {
            result = await Store.AppendAsync(new StreamAppend(Serial, expected, rows, snapshot));
        }
        catch (WrongExpectedVersionException)
        {
            LogConcurrentWriter(Serial);
            _state = await LoadAsync(CancellationToken.None);
            _stale = false;
            throw;
        }
        catch (Exception e)
        {
            // Ambiguous commit: drop this activation; until it goes, the next call re-reads the stream (_stale).
            LogAppendFailed(e, Serial, rows.Length);
            DeactivateOnIdle();
            throw new PumpStorageException($"Storing {rows.Length} events of pump {Serial} failed ({e.GetType().Name}: {e.Message}); nothing is acknowledged, resend.");
        }

        if (result.AlreadyStored)
        {
            _state = await LoadAsync(CancellationToken.None);
            _stale = false;
            return;
        }

        _stale = false;
        if (snapshot is not null)
        {
            _snapshotVersion = _state.Version;
        }

        foreach (var e in decisions.Select(d => d.Event).OfType<AnomalyDetected>())
        {
            LogAnomaly(Serial, e.Kind, e.Severity, e.AnomalyId);
        }
    }

    // The snapshot written with the append that reaches its version; null (the next threshold retries) if it cannot be made.
    private SnapshotWrite? SnapshotOfState()
    {
        try
        {
            var every = Options.Value.SnapshotHistoryEvery;
            var keep = _state.Version / every > _snapshotVersion / every ? _state.SnapshotCoversUntil : null;
            return new SnapshotWrite(PumpState.SchemaVersion, JsonSerializer.Serialize(_state, SnapshotJson.Options), keep);
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            LogSnapshotFailed(e, Serial);
            return null;
        }
    }

    private static void ToRows(IReadOnlyList<PlannedEvent> events, string? hubId, string? messageId, EventToAppend[] rows, int offset)
    {
        var metadata = hubId is null && messageId is null
            ? null
            : JsonSerializer.Serialize(new EventMetadata(hubId, messageId, null), EventJson.Options);
        // The first event of a hub's message also carries the trace it was ingested in (W3C traceparent of the grain
        // call) when that trace is sampled, so the projection page that applies it can link back to the message
        // (ProjectionTracing); once per message, not per event, to keep the rows small. Tracing off adds nothing.
        var traced = hubId is not null && events.Count > 0 && Activity.Current is { Recorded: true } current
            ? JsonSerializer.Serialize(new EventMetadata(hubId, messageId, current.Id), EventJson.Options)
            : metadata;
        for (var i = 0; i < events.Count; i++)
        {
            var p = events[i];
            rows[offset + i] = new EventToAppend(p.EventId, EventTypes.NameOf(p.Event), EventJson.Serialize(p.Event), p.Seq,
                p.Event is DeviceEvent d ? d.At : null, p.ReceivedAt, p.ClockSuspect, i == 0 ? traced : metadata);
        }
    }

    private void Fold(IReadOnlyList<PlannedEvent> events)
    {
        using var fold = GrainsTracing.Source.StartActivity("fold");
        var version = _state.Version;
        foreach (var p in events)
        {
            // The store keeps receive times to the microsecond: fold what a replay will read, so that a snapshot of
            // this state and a fold of the stored stream agree exactly (as-of views start from kept snapshots).
            var receivedAt = p.ReceivedAt.AddTicks(-(p.ReceivedAt.UtcTicks % 10));
            _state.Apply(p.Event, new EventEnvelope(++version, p.Seq, receivedAt, p.ClockSuspect));
        }
    }

    /// <inheritdoc />
    /// <remarks>Stateless (never touches this activation's state) and interleaved (see the interface), so it cannot stall ingest.</remarks>
    public Task<PumpView> GetStateAsOfAsync(DateTimeOffset asOf) => new PumpAsOfReader(Store).ReadAsync(Serial, asOf);

    /// <inheritdoc />
    public Task<bool> AcknowledgeAnomalyAsync(string anomalyId, string by, string? note) => DecideOnceMoreOnConflictAsync(async () =>
    {
        var now = Time.GetUtcNow();
        if (PumpDecisions.Acknowledge(_state, anomalyId, by, note, now) is not { } acknowledged)
        {
            return false;
        }

        await AppendAndApplyAsync([new PlannedEvent(acknowledged, Guid.NewGuid(), null, now, false)], null, null);
        return true;
    });

    /// <inheritdoc />
    public Task<bool> ResolveAnomalyAsync(string anomalyId, string by, string? note) => DecideOnceMoreOnConflictAsync(async () =>
    {
        var now = Time.GetUtcNow();
        if (PumpDecisions.Resolve(_state, anomalyId, by, note, now) is not { } resolved)
        {
            return false;
        }

        await AppendAndApplyAsync([new PlannedEvent(resolved, Guid.NewGuid(), null, now, false)], null, null);
        return true;
    });

    /// <inheritdoc />
    public Task<bool> MarkSilentAsync(DateTimeOffset lastSeenAt, TimeSpan window) =>
        DecideOnceMoreOnConflictAsync(() => MarkSilentOnceAsync(lastSeenAt, window));

    private async Task<bool> MarkSilentOnceAsync(DateTimeOffset lastSeenAt, TimeSpan window)
    {
        // The one detector on wall time: silence is about the platform not hearing, not about event time.
        var now = Time.GetUtcNow();
        if (PumpDecisions.MarkSilent(_state, lastSeenAt, window, now) is not { } e)
        {
            return false;
        }

        await AppendAndApplyAsync([new PlannedEvent(e, AnomalyEngine.EventId(e), null, now, false)], null, null);
        LogAnomaly(Serial, e.Kind, e.Severity, e.AnomalyId);
        await ReevaluateOnceAsync();
        try
        {
            // Durable (ADO.NET reminders in PostgreSQL in a cluster): the re-evaluation survives a silo restart.
            var period = Detection.Value.ReevaluateAfter;
            await this.RegisterOrUpdateReminder(ReevaluateReminder, period, period);
        }
        catch (Exception ex) when (ex is not OutOfMemoryException)
        {
            // Without a reminder the fleet monitor still re-evaluates depletion risk from the read model.
            LogReminderFailed(ex, Serial);
        }

        return true;
    }

    /// <inheritdoc />
    public Task<PumpEvent?> SetSignalAsync(CohortSignalFinding? finding) =>
        SetCohortFindingAsync(AnomalyKinds.CohortSignal, finding, "the cohort no longer stands out from the fleet");

    /// <inheritdoc />
    public Task<PumpEvent?> SetFindingAsync(string kind, CohortSignalFinding? finding)
    {
        // Only fleet-level kinds, each on its own kind of stream: a cohort-signal stream never carries a flow finding.
        if (kind != AnomalyKinds.CohortFlowDeviation || Domain.Detection.CohortFlow.CohortKey.FromStreamId(Serial) is null)
        {
            throw new ArgumentException($"'{kind}' cannot be set on the stream '{Serial}'.", nameof(kind));
        }

        return SetCohortFindingAsync(kind, finding, "refills no longer reveal a flow deviation in the cohort");
    }

    private Task<PumpEvent?> SetCohortFindingAsync(string kind, CohortSignalFinding? finding, string resolvedNote)
    {
        if (Contracts.StreamIds.IsPump(Serial))
        {
            throw new ArgumentException($"'{Serial}' is a pump's stream, not a cohort's.");
        }

        return DecideOnceMoreOnConflictAsync(async () =>
        {
            var open = _state.AnomalyOfKind(kind);
            var now = Time.GetUtcNow();
            PumpEvent? e = null;
            if (finding is not null && open is null)
            {
                e = new AnomalyDetected
                {
                    At = now,
                    AnomalyId = AnomalyEngine.AnomalyId(Serial, kind, _state.Version),
                    Kind = kind,
                    Severity = "warning",
                    Summary = finding.Summary,
                    Evidence = finding.Evidence,
                };
            }
            else if (finding is null && open is not null)
            {
                e = AnomalyEngine.Resolved(open.Id, now, resolvedNote);
            }

            if (e is not null)
            {
                await AppendAndApplyAsync([new PlannedEvent(e, AnomalyEngine.EventId(e), null, now, false)], null, null);
            }

            return e;
        });
    }

    /// <inheritdoc />
    public Task<bool> ReevaluateAsync() => DecideOnceMoreOnConflictAsync(ReevaluateOnceAsync);

    /// <inheritdoc />
    public async Task<bool> SetFlowCorrectionAsync(PumpFlowCorrection? correction)
    {
        if (!Contracts.StreamIds.IsPump(Serial))
        {
            throw new ArgumentException($"'{Serial}' is not a pump's stream: a flow correction applies to pumps only.");
        }

        var changed = await DecideOnceMoreOnConflictAsync(async () =>
        {
            var now = Time.GetUtcNow();
            if (PumpDecisions.SetFlowCorrection(_state, correction, now) is not { } e)
            {
                return false;
            }

            // Stamped with the last receive time like the detectors' decisions: a fleet job's word is not data from the pump.
            await AppendAndApplyAsync([new PlannedEvent(e, Guid.NewGuid(), null, _state.LastSeenAt ?? now, false)], null, null);
            LogFlowCorrection(Serial, e.Cohort ?? "none", e.Factor ?? 1, e.AnomalyId ?? "cleared");
            return true;
        });

        if (changed && Detection.Value.Enabled && _state.Phase != "explanted")
        {
            await DecideOnceMoreOnConflictAsync(DecideDepletionOnceAsync);
        }

        return changed;
    }

    // The forecast changed without new data (a flow correction): decide depletion risk again now. A pump quiet for
    // longer than ReevaluateAfter (by receive time) is projected to the wall clock, as its re-evaluations are; any other
    // at its own event time, as after a batch (an accelerated replay's event time is not the wall clock).
    private async Task<bool> DecideDepletionOnceAsync()
    {
        var now = Time.GetUtcNow();
        var quiet = _state.LastSeenAt is not { } seen || now - seen >= Detection.Value.ReevaluateAfter;
        var decided = quiet
            ? AnomalyEngine.Reevaluate(_state, Detection.Value, now)
            : AnomalyEngine.EvaluateDepletion(_state, Detection.Value, now);
        if (decided.Count == 0)
        {
            return false;
        }

        var receivedAt = _state.LastSeenAt ?? now;
        await AppendAndApplyAsync([.. decided.Select(x => new PlannedEvent(x, AnomalyEngine.EventId(x), null, receivedAt, false))], null, null);
        foreach (var x in decided.OfType<AnomalyDetected>())
        {
            LogAnomaly(Serial, x.Kind, x.Severity, x.AnomalyId);
        }

        return true;
    }

    /// <inheritdoc />
    public async Task ReceiveReminder(string reminderName, TickStatus status)
    {
        if (reminderName != ReevaluateReminder)
        {
            return;
        }

        if (_state.AnomalyOfKind(AnomalyKinds.Silent) is null)
        {
            // Heard from again (the silent anomaly resolved): the schedule ends.
            if (await this.GetReminder(ReevaluateReminder) is { } reminder)
            {
                await this.UnregisterReminder(reminder);
            }

            return;
        }

        await ReevaluateAsync();
    }

    private async Task<bool> ReevaluateOnceAsync()
    {
        if (!Detection.Value.Enabled || _state.Phase == "explanted")
        {
            return false;
        }

        var now = Time.GetUtcNow();
        var decided = AnomalyEngine.Reevaluate(_state, Detection.Value, now);
        if (decided.Count == 0)
        {
            return false;
        }

        // Stamped with the last receive time, like every detector decision: a decision is not data from the pump.
        var receivedAt = _state.LastSeenAt ?? now;
        await AppendAndApplyAsync([.. decided.Select(x => new PlannedEvent(x, AnomalyEngine.EventId(x), null, receivedAt, false))], null, null);
        foreach (var x in decided.OfType<AnomalyDetected>())
        {
            LogAnomaly(Serial, x.Kind, x.Severity, x.AnomalyId);
        }

        return true;
    }

    /// <summary>
    /// Runs the detectors on the state after a batch and appends what they decide: a second append, only when
    /// something changed. A failure here fails the call like any append; the batch is then already stored, so the
    /// hub's resend is a duplicate and the next batch decides again.
    /// </summary>
    private async Task<bool> DetectAsync()
    {
        using var activity = GrainsTracing.Source.StartActivity("detect");
        if (!Detection.Value.Enabled)
        {
            return false;
        }

        var decided = AnomalyEngine.Evaluate(_state, Detection.Value);
        if (decided.Count == 0)
        {
            return false;
        }

        var receivedAt = _state.LastSeenAt ?? Time.GetUtcNow();
        await AppendAndApplyAsync([.. decided.Select(e => new PlannedEvent(e, AnomalyEngine.EventId(e), null, receivedAt, false))], null, null);
        foreach (var e in decided.OfType<AnomalyDetected>())
        {
            LogAnomaly(Serial, e.Kind, e.Severity, e.AnomalyId);
        }

        return true;
    }

    /// <summary>Appends events in one round trip, then folds them. On failure the activation is dropped and the call fails.</summary>
    private async Task AppendAndApplyAsync(IReadOnlyList<PlannedEvent> events, string? hubId, string? messageId)
    {
        var rows = new EventToAppend[events.Count];
        ToRows(events, hubId, messageId, rows, 0);
        AppendResult result;
        try
        {
            result = await Store.AppendAsync(Serial, _state.Version, rows);
        }
        catch (WrongExpectedVersionException)
        {
            // Another activation wrote first: this one was stale. Re-read now, so that the caller's second decision
            // (and every later call) works on the current stream rather than failing until the activation is collected.
            LogConcurrentWriter(Serial);
            _state = await LoadAsync(CancellationToken.None);
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

        Fold(events);
        if (_state.NeedsRebuild)
        {
            // A device event from before the fold window arrived: fold the whole stream in seq order.
            LogReplay(Serial);
            _state = await ReplayAsync(CancellationToken.None);
        }

        if (_state.Version - _snapshotVersion >= Options.Value.SnapshotEvery)
        {
            await SaveSnapshotAsync();
        }
    }

    private async Task SaveSnapshotAsync()
    {
        try
        {
            var json = JsonSerializer.Serialize(_state, SnapshotJson.Options);
            var snapshot = new Snapshot(Serial, _state.Version, PumpState.SchemaVersion, json);
            await Store.SaveSnapshotAsync(snapshot);
            var every = Options.Value.SnapshotHistoryEvery;
            if (_state.Version / every > _snapshotVersion / every && _state.SnapshotCoversUntil is { } coversUntil)
            {
                // Crossed a multiple since the last snapshot: keep this one for as-of views (the latest is overwritten).
                await Store.SaveHistoricalSnapshotAsync(snapshot, coversUntil);
            }

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
        if (Options.Value.LoadInOneRoundTrip)
        {
            // Snapshot and tail in one statement (issue 15: activation in one round trip); an old-schema snapshot is
            // not returned, so the whole stream comes back and is folded, as below.
            var tail = await Store.LoadSnapshotAndTailAsync(Serial, PumpState.SchemaVersion, ct);
            if (tail.Snapshot is { } current)
            {
                state = FromSnapshot(current) ?? state;
            }

            // The tail starts after the snapshot row's version; a state that disagrees with its row (never written so)
            // reads its tail from its own version, as the two-trip path does.
            if (tail.Snapshot is null || state.Version == tail.Snapshot.Version)
            {
                foreach (var stored in tail.Events)
                {
                    state.Apply(EventJson.Deserialize(stored.Type, stored.Data), Envelope(stored));
                }

                return state.NeedsRebuild ? await ReplayAsync(ct) : state;
            }
        }
        else if (await Store.LoadSnapshotAsync(Serial, ct) is { SchemaVersion: PumpState.SchemaVersion } snapshot)
        {
            state = FromSnapshot(snapshot) ?? state;
        }

        await foreach (var stored in Store.ReadStreamAsync(Serial, state.Version, ct))
        {
            state.Apply(EventJson.Deserialize(stored.Type, stored.Data), Envelope(stored));
        }

        return state.NeedsRebuild ? await ReplayAsync(ct) : state;
    }

    private PumpState? FromSnapshot(Snapshot snapshot)
    {
        if (JsonSerializer.Deserialize<PumpState>(snapshot.State, SnapshotJson.Options) is not { } state)
        {
            return null;
        }

        state.Serial = Serial;
        _snapshotVersion = snapshot.Version;
        return state;
    }

    /// <summary>Folds the whole stream without a window limit: the seq-order state whatever the arrival order was.</summary>
    private async Task<PumpState> ReplayAsync(CancellationToken ct)
    {
        var state = PumpState.StartReplay(Serial);
        await foreach (var stored in Store.ReadStreamAsync(Serial, 0, ct))
        {
            state.Apply(EventJson.Deserialize(stored.Type, stored.Data), Envelope(stored));
        }

        state.FinishReplay();
        return state;
    }

    private static EventEnvelope Envelope(StoredEvent s) => new(s.Version, s.Seq, s.ReceivedAt, s.ClockSuspect);

    [LoggerMessage(Level = LogLevel.Error, Message = "Append of {Count} events for pump {Serial} failed; the call fails and the activation is dropped")]
    private partial void LogAppendFailed(Exception e, string serial, int count);

    [LoggerMessage(Level = LogLevel.Error, Message = "Loading pump {Serial} from the event store failed; the activation fails")]
    private partial void LogLoadFailed(Exception e, string serial);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Snapshot of pump {Serial} failed; it will be retried at the next threshold")]
    private partial void LogSnapshotFailed(Exception e, string serial);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Pump {Serial}: another writer appended first; state re-read and the command decided again")]
    private partial void LogConcurrentWriter(string serial);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Pump {Serial}: the re-evaluation reminder could not be registered; the fleet monitor still re-evaluates depletion risk")]
    private partial void LogReminderFailed(Exception e, string serial);

    [LoggerMessage(Level = LogLevel.Information, Message = "Pump {Serial}: a device event older than the fold window arrived; the stream is replayed in seq order")]
    private partial void LogReplay(string serial);

    [LoggerMessage(Level = LogLevel.Information, Message = "Pump {Serial}: flow correction now {Cohort} × {Factor} (source {AnomalyId})")]
    private partial void LogFlowCorrection(string serial, string cohort, double factor, string anomalyId);

    [LoggerMessage(Level = LogLevel.Information, Message = "Pump {Serial}: {Severity} {Kind} anomaly {AnomalyId} opened")]
    private partial void LogAnomaly(string serial, string kind, string severity, string anomalyId);

    private sealed record EventMetadata(string? HubId, string? MessageId, [property: JsonPropertyName("traceparent")] string? TraceParent);

    // The planner is pure domain code without tracing; its span is opened here, where the grain calls it.
    private IngestPlan Plan(IngestBatch batch)
    {
        using var activity = GrainsTracing.Source.StartActivity("plan");
        return IngestPlanner.Plan(_state, batch, Guid.NewGuid, Options.Value.SeqWindow);
    }
}
