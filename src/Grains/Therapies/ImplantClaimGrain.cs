using Microsoft.Extensions.Logging;
using PumpFleet.Contracts;
using PumpFleet.Contracts.Events;
using PumpFleet.Contracts.Grains;
using PumpFleet.Contracts.Json;
using PumpFleet.EventStore;

namespace PumpFleet.Grains.Therapies;

/// <summary>
/// One per serial: which therapy implanted the pump. The claim is the one event of the stream
/// <c>implant-claim:{serial}</c>, appended at version 1 only (expected version 0), so the store's
/// <c>UNIQUE (stream_id, version)</c> lets exactly one claim in, even with two activations of this grain or two
/// processes at once; the loser re-reads and learns the holder. The therapy grain claims before it appends its
/// <c>therapy.implant</c>: a serial in two therapies is refused at write time, not found later in a read model. A claim
/// is never released (a pump is implanted in one patient, ever); a claim whose therapy append then failed stays with
/// that therapy, whose retry succeeds.
/// </summary>
public sealed partial class ImplantClaimGrain(IEventStore store, TimeProvider time, ILogger<ImplantClaimGrain> logger) : Grain, IImplantClaimGrain
{
    private string? _holder;

    private string Serial => this.GetPrimaryKeyString();

    /// <inheritdoc />
    public override async Task OnActivateAsync(CancellationToken cancellationToken)
    {
        try
        {
            _holder = await LoadAsync(cancellationToken);
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            LogLoadFailed(e, Serial);
            throw new PumpStorageException($"Loading the implant claim of {Serial} failed ({e.GetType().Name}: {e.Message}).");
        }

        await base.OnActivateAsync(cancellationToken);
    }

    /// <inheritdoc />
    public Task<string?> HolderAsync() => Task.FromResult(_holder);

    /// <inheritdoc />
    public async Task<string?> ClaimAsync(string therapyId, string by, DateTimeOffset at)
    {
        ArgumentNullException.ThrowIfNull(therapyId);
        if (_holder is not null)
        {
            return _holder == therapyId ? null : _holder;
        }

        var claim = new ImplantClaimed { At = at, Serial = Serial, TherapyId = therapyId, By = by };
        try
        {
            var result = await store.AppendAsync(StreamIds.ImplantClaim(Serial), 0,
                [new EventToAppend(Guid.NewGuid(), EventTypes.NameOf(claim), EventJson.Serialize(claim), null, null, time.GetUtcNow())]);
            if (!result.AlreadyStored)
            {
                _holder = therapyId;
                return null;
            }
        }
        catch (WrongExpectedVersionException)
        {
            // Someone claimed it first (another activation or process): the stored claim decides.
            LogClaimedElsewhere(Serial);
        }
        catch (Exception e)
        {
            LogAppendFailed(e, Serial);
            DeactivateOnIdle();
            throw new PumpStorageException($"Storing the implant claim of {Serial} failed ({e.GetType().Name}: {e.Message}); nothing was recorded, try again.");
        }

        _holder = await LoadAsync(CancellationToken.None);
        return _holder is null || _holder == therapyId ? null : _holder;
    }

    private async Task<string?> LoadAsync(CancellationToken ct)
    {
        await foreach (var stored in store.ReadStreamAsync(StreamIds.ImplantClaim(Serial), 0, ct))
        {
            if (EventJson.Deserialize(stored.Type, stored.Data) is ImplantClaimed c)
            {
                return c.TherapyId;
            }
        }

        return null;
    }

    [LoggerMessage(Level = LogLevel.Error, Message = "Loading the implant claim of {Serial} failed; the activation fails")]
    private partial void LogLoadFailed(Exception e, string serial);

    [LoggerMessage(Level = LogLevel.Error, Message = "Appending the implant claim of {Serial} failed; the call fails and the activation is dropped")]
    private partial void LogAppendFailed(Exception e, string serial);

    [LoggerMessage(Level = LogLevel.Information, Message = "The implant claim of {Serial} was stored by another writer first; re-read")]
    private partial void LogClaimedElsewhere(string serial);
}
