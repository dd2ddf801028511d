using System.Runtime.CompilerServices;
using PumpFleet.Contracts.Events;
using PumpFleet.Contracts.Json;
using PumpFleet.Contracts.Views;
using PumpFleet.Domain.Pumps;
using PumpFleet.EventStore;

namespace PumpFleet.Grains.Pumps;

/// <summary>Reads a pump's stream from the store and folds it as of an event time (<see cref="PumpAsOf"/>), outside any grain's state.</summary>
public sealed class PumpAsOfReader(IEventStore store)
{
    /// <summary>The view of <paramref name="serial"/> as of <paramref name="asOf"/>.</summary>
    public Task<PumpView> ReadAsync(string serial, DateTimeOffset asOf, CancellationToken ct = default) =>
        PumpAsOf.FoldAsync(serial, asOf, Stream(store, serial, ct), ct);

    /// <summary>A stored stream as (event, envelope) pairs.</summary>
    public static async IAsyncEnumerable<(PumpEvent Event, EventEnvelope Envelope)> Stream(
        IEventStore store, string serial, [EnumeratorCancellation] CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(store);
        await foreach (var s in store.ReadStreamAsync(serial, 0, ct))
        {
            yield return (EventJson.Deserialize(s.Type, s.Data), new EventEnvelope(s.Version, s.Seq, s.ReceivedAt, s.ClockSuspect));
        }
    }
}
