using Microsoft.Extensions.Logging;
using PumpFleet.Contracts;
using PumpFleet.Contracts.Events;
using PumpFleet.Contracts.Grains;
using PumpFleet.Contracts.Json;
using PumpFleet.Contracts.Views;
using PumpFleet.Domain.Therapies;
using PumpFleet.EventStore;

namespace PumpFleet.Grains.Therapies;

/// <summary>
/// One virtual actor per therapy id, the one writer of its stream <c>therapy:{id}</c>: loads the stream, decides each
/// command with <see cref="TherapyDecisions"/>, appends what the rules allow in one round trip (a replacement's
/// explant and implant together), then folds it. An implant first claims its serial (<see cref="ImplantClaimGrain"/>). Like the pump grain, a failed append fails the call and drops the
/// activation, so nothing is reported as recorded that is not stored.
/// </summary>
public sealed partial class TherapyGrain(IEventStore store, TimeProvider time, ILogger<TherapyGrain> logger) : Grain, ITherapyGrain
{
    private TherapyState _state = null!;

    private string Id => this.GetPrimaryKeyString();

    /// <inheritdoc />
    public override async Task OnActivateAsync(CancellationToken cancellationToken)
    {
        try
        {
            _state = await LoadAsync(cancellationToken);
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            // The driver's exception has no Orleans codec: callers get one they can read.
            LogLoadFailed(e, Id);
            throw new PumpStorageException($"Loading therapy {Id} failed ({e.GetType().Name}: {e.Message}).");
        }

        await base.OnActivateAsync(cancellationToken);
    }

    /// <inheritdoc />
    public Task<TherapyView> GetAsync() => Task.FromResult(_state.ToView());

    /// <inheritdoc />
    public async Task<TherapyCommandResult> ExecuteAsync(TherapyCommand command)
    {
        ArgumentNullException.ThrowIfNull(command);
        try
        {
            return await DecideAndAppendAsync(command);
        }
        catch (WrongExpectedVersionException)
        {
            // Another activation wrote first (a rare duplicate during a membership change): re-read and decide again.
            LogConcurrentWriter(Id);
            _state = await LoadAsync(CancellationToken.None);
            return await DecideAndAppendAsync(command);
        }
    }

    private async Task<TherapyCommandResult> DecideAndAppendAsync(TherapyCommand command)
    {
        var decision = TherapyDecisions.Decide(_state, command, time.GetUtcNow());
        if (decision.Error is not null)
        {
            return new TherapyCommandResult { Error = decision.Error, Field = decision.Field, Reason = decision.Reason, Therapy = _state.ToView() };
        }

        // A pump is implanted in one therapy, ever: claim each implanted serial first (stored before this returns). Two
        // therapies implanting one serial at once both get here; the claim lets exactly one through.
        foreach (var implant in decision.Events.OfType<PumpImplanted>())
        {
            if (await GrainFactory.GetGrain<IImplantClaimGrain>(implant.Serial).ClaimAsync(Id, command.By, implant.At) is { } holder)
            {
                return new TherapyCommandResult
                {
                    Error = TherapyDecision.Conflict, Field = "serial", Therapy = _state.ToView(),
                    Reason = $"Pump {implant.Serial} is implanted in another therapy ({holder}).",
                };
            }
        }

        var now = time.GetUtcNow();
        var rows = decision.Events.Select(e => new EventToAppend(Guid.NewGuid(), EventTypes.NameOf(e), EventJson.Serialize(e), null, null, now)).ToArray();
        AppendResult result;
        try
        {
            result = await store.AppendAsync(StreamIds.Therapy(Id), _state.Version, rows);
        }
        catch (Exception e) when (e is not WrongExpectedVersionException)
        {
            LogAppendFailed(e, Id);
            DeactivateOnIdle();
            throw new PumpStorageException($"Storing therapy {Id}'s {command.Action} failed ({e.GetType().Name}: {e.Message}); nothing was recorded, try again.");
        }

        if (result.AlreadyStored)
        {
            _state = await LoadAsync(CancellationToken.None);
        }
        else
        {
            foreach (var e in decision.Events)
            {
                _state.Apply(e);
            }
        }

        return new TherapyCommandResult { Therapy = _state.ToView() };
    }

    private async Task<TherapyState> LoadAsync(CancellationToken ct)
    {
        var state = new TherapyState { Id = Id };
        await foreach (var stored in store.ReadStreamAsync(StreamIds.Therapy(Id), 0, ct))
        {
            if (EventJson.Deserialize(stored.Type, stored.Data) is TherapyEvent e)
            {
                state.Apply(e);
            }
        }

        return state;
    }

    [LoggerMessage(Level = LogLevel.Error, Message = "Append to therapy {Id} failed; the call fails and the activation is dropped")]
    private partial void LogAppendFailed(Exception e, string id);

    [LoggerMessage(Level = LogLevel.Error, Message = "Loading therapy {Id} from the event store failed; the activation fails")]
    private partial void LogLoadFailed(Exception e, string id);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Therapy {Id}: another writer appended first; state re-read and the command decided again")]
    private partial void LogConcurrentWriter(string id);
}
