using System.Text.Json;
using PumpFleet.Contracts.Events;
using PumpFleet.Contracts.Views;

namespace PumpFleet.Domain.Pumps;

/// <summary>An as-of view and what it cost: the events folded after the snapshot it started from.</summary>
/// <param name="View">The pump as of the time.</param>
/// <param name="FromVersion">Version of the kept snapshot the fold started from (0: the stream's start).</param>
/// <param name="EventsRead">Events read and folded after that snapshot (including a fallback replay's).</param>
/// <param name="Replayed">A late event reached behind the snapshot's fold window, so the stream was folded from its start.</param>
public sealed record PumpAsOfResult(PumpView View, long FromVersion, int EventsRead, bool Replayed);

/// <summary>
/// A pump's state as of an event time: a stateless fold of its stored stream (in stored order), so a viewer
/// travelling in time never queues behind, or stalls, the pump's grain. Consistently in event time: a device event
/// counts when its <c>at</c> (its receive time when the clock was suspect) is at or before the time, folded in seq
/// order like the live state; a platform event when its <c>at</c> is. Identity (<c>device.identified</c>,
/// <c>pump.paired</c>) is known for every device event the view contains: a backlog uploaded after pairing still
/// shows its device and hub. Bounded: it can start from a kept snapshot whose events all lie at or before the time
/// (<see cref="PumpState.SnapshotCoversUntil"/>), which is exactly the state the filtered fold reaches at that version, and
/// fold only the events after it.
/// </summary>
public static class PumpAsOf
{
    /// <summary>The time at which an event counts for an as-of view.</summary>
    public static DateTimeOffset EffectiveAt(PumpEvent e, EventEnvelope env)
    {
        ArgumentNullException.ThrowIfNull(e);
        return e is DeviceEvent && env.ClockSuspect ? env.ReceivedAt : e.At;
    }

    /// <summary>The view of <paramref name="serial"/> as of <paramref name="asOf"/>, from its whole stored stream.</summary>
    public static async Task<PumpView> FoldAsync(
        string serial, DateTimeOffset asOf, IAsyncEnumerable<(PumpEvent Event, EventEnvelope Envelope)> stream, CancellationToken ct = default)
    {
        var state = PumpState.StartReplay(serial);
        await FoldTailAsync(state, asOf, stream, ct);
        state.FinishReplay();
        return state.ToView();
    }

    /// <summary>
    /// The view as of <paramref name="asOf"/> from a kept snapshot (<paramref name="snapshotJson"/> at
    /// <paramref name="snapshotVersion"/>, whose <see cref="PumpState.SnapshotCoversUntil"/> is at or before the time; null: none)
    /// and the events after it (<paramref name="tail"/>; events after the time may be included, they are skipped).
    /// When a late event in the tail belongs behind the snapshot's fold window, the whole stream is folded instead
    /// (<paramref name="fullStream"/>), so the result always equals <see cref="FoldAsync"/> over the whole stream.
    /// </summary>
    public static async Task<PumpAsOfResult> FoldFromSnapshotAsync(
        string serial, DateTimeOffset asOf, string? snapshotJson, long snapshotVersion,
        IAsyncEnumerable<(PumpEvent Event, EventEnvelope Envelope)> tail,
        Func<IAsyncEnumerable<(PumpEvent Event, EventEnvelope Envelope)>> fullStream, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(fullStream);
        var state = snapshotJson is null ? null : JsonSerializer.Deserialize<PumpState>(snapshotJson, SnapshotJson.Options);
        if (state is null || state.Version != snapshotVersion || state.SnapshotCoversUntil > asOf)
        {
            state = PumpState.StartReplay(serial);
            snapshotVersion = 0;
        }
        else
        {
            state.Serial = serial;
            state.ContinueAsReplay();
        }

        var read = await FoldTailAsync(state, asOf, tail, ct);
        if (state.NeedsRebuild)
        {
            state = PumpState.StartReplay(serial);
            read += await FoldTailAsync(state, asOf, fullStream(), ct);
            state.FinishReplay();
            return new PumpAsOfResult(state.ToView(), 0, read, Replayed: true);
        }

        state.FinishReplay();
        return new PumpAsOfResult(state.ToView(), snapshotVersion, read, Replayed: false);
    }

    // Applies the events that count as of the time; returns how many events were read.
    private static async Task<int> FoldTailAsync(
        PumpState state, DateTimeOffset asOf, IAsyncEnumerable<(PumpEvent Event, EventEnvelope Envelope)> stream, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(stream);
        var read = 0;
        var identity = new List<(PumpEvent Event, EventEnvelope Envelope)>();
        await foreach (var (e, env) in stream.WithCancellation(ct))
        {
            read++;
            if (EffectiveAt(e, env) <= asOf)
            {
                // Identity stored before an included event: the data could not have been stored without it.
                foreach (var (i, ienv) in identity)
                {
                    state.Apply(i, ienv);
                }

                identity.Clear();
                state.Apply(e, env);
            }
            else if (e is DeviceIdentified or PumpPaired)
            {
                identity.Add((e, env));
            }
        }

        return read;
    }
}
