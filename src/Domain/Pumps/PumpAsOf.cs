using PumpFleet.Contracts.Events;
using PumpFleet.Contracts.Views;

namespace PumpFleet.Domain.Pumps;

/// <summary>
/// A pump's state as of an event time: a stateless fold of its stored stream (in stored order), so a viewer
/// travelling in time never queues behind, or stalls, the pump's grain. Consistently in event time: a device event
/// counts when its <c>at</c> (its receive time when the clock was suspect) is at or before the time, folded in seq
/// order like the live state; a platform event when its <c>at</c> is. Identity (<c>device.identified</c>,
/// <c>pump.paired</c>) is known for every device event the view contains: a backlog uploaded after pairing still
/// shows its device and hub.
/// </summary>
public static class PumpAsOf
{
    /// <summary>The view of <paramref name="serial"/> as of <paramref name="asOf"/>, from its stored stream.</summary>
    public static async Task<PumpView> FoldAsync(
        string serial, DateTimeOffset asOf, IAsyncEnumerable<(PumpEvent Event, EventEnvelope Envelope)> stream, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(stream);
        var state = PumpState.StartReplay(serial);
        var identity = new List<(PumpEvent Event, EventEnvelope Envelope)>();
        await foreach (var (e, env) in stream.WithCancellation(ct))
        {
            var effective = e is DeviceEvent && env.ClockSuspect ? env.ReceivedAt : e.At;
            if (effective <= asOf)
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

        state.FinishReplay();
        return state.ToView();
    }
}
