using PumpFleet.Contracts.Events;
using PumpFleet.Contracts.Json;
using PumpFleet.Contracts.Views;
using PumpFleet.EventStore;

namespace PumpFleet.Grains.Pumps;

/// <summary>
/// A pump's state as of an event time, read without its grain: a stateless fold of the stored stream, so a viewer
/// travelling in time never queues behind (or stalls) the pump's ingest. Consistently in event time: a device event
/// counts when its <c>at</c> (its receive time when the clock was suspect) is at or before the time, folded in seq
/// order like the live state; a platform event when its <c>at</c> is. Identity (<c>device.identified</c>,
/// <c>pump.paired</c>) is known for every device event the view contains: a backlog uploaded after pairing still
/// shows its device and hub.
/// </summary>
public sealed class PumpAsOfReader(IEventStore store)
{
    /// <summary>The view of <paramref name="serial"/> as of <paramref name="asOf"/>.</summary>
    public async Task<PumpView> ReadAsync(string serial, DateTimeOffset asOf, CancellationToken ct = default)
    {
        var state = PumpState.StartReplay(serial);
        var identity = new List<(PumpEvent Event, EventEnvelope Envelope)>();
        await foreach (var stored in store.ReadStreamAsync(serial, 0, ct))
        {
            var e = EventJson.Deserialize(stored.Type, stored.Data);
            var env = new EventEnvelope(stored.Version, stored.Seq, stored.ReceivedAt, stored.ClockSuspect);
            var effective = e is DeviceEvent && stored.ClockSuspect ? stored.ReceivedAt : e.At;
            if (effective <= asOf)
            {
                Flush(state, identity);
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

    // Identity events stored before an included event: the data could not have been stored without them.
    private static void Flush(PumpState state, List<(PumpEvent Event, EventEnvelope Envelope)> identity)
    {
        foreach (var (e, env) in identity)
        {
            state.Apply(e, env);
        }

        identity.Clear();
    }
}
