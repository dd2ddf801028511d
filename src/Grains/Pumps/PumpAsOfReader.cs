using System.Runtime.CompilerServices;
using PumpFleet.Contracts.Events;
using PumpFleet.Contracts.Json;
using PumpFleet.Contracts.Views;
using PumpFleet.Domain.Pumps;
using PumpFleet.EventStore;

namespace PumpFleet.Grains.Pumps;

/// <summary>
/// Reads a pump as of an event time outside any grain's state (<see cref="PumpAsOf"/>): the newest kept snapshot whose
/// events all lie at or before the time, then only the stream's events after it that count as of the time. The cost
/// is one snapshot plus the events of about one history interval (<see cref="PumpGrainOptions.SnapshotHistoryEvery"/>)
/// and any that arrived late, not the whole stream.
/// </summary>
public sealed class PumpAsOfReader(IEventReader events, ISnapshotStore snapshots)
{
    /// <summary>Reads from the one store that plays both roles.</summary>
    public PumpAsOfReader(IEventStore store) : this(store, store)
    {
    }

    /// <summary>The view of <paramref name="serial"/> as of <paramref name="asOf"/>.</summary>
    public async Task<PumpView> ReadAsync(string serial, DateTimeOffset asOf, CancellationToken ct = default) =>
        (await ReadWithCostAsync(serial, asOf, ct)).View;

    /// <summary>The view and what it cost (the snapshot it started from, the events read after it).</summary>
    public async Task<PumpAsOfResult> ReadWithCostAsync(string serial, DateTimeOffset asOf, CancellationToken ct = default)
    {
        var snapshot = await snapshots.LoadSnapshotAsOfAsync(serial, asOf, PumpState.SchemaVersion, ct);
        var from = snapshot?.Version ?? 0;
        return await PumpAsOf.FoldFromSnapshotAsync(serial, asOf, snapshot?.State, from,
            Decode(events.ReadStreamAsOfAsync(serial, from, asOf, ct)), () => Decode(events.ReadStreamAsOfAsync(serial, 0, asOf, ct)), ct);
    }

    /// <summary>A stored stream as (event, envelope) pairs.</summary>
    public static IAsyncEnumerable<(PumpEvent Event, EventEnvelope Envelope)> Stream(IEventReader store, string serial, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(store);
        return Decode(store.ReadStreamAsync(serial, 0, ct));
    }

    private static async IAsyncEnumerable<(PumpEvent Event, EventEnvelope Envelope)> Decode(
        IAsyncEnumerable<StoredEvent> stored, [EnumeratorCancellation] CancellationToken ct = default)
    {
        await foreach (var s in stored.WithCancellation(ct))
        {
            yield return (EventJson.Deserialize(s.Type, s.Data), new EventEnvelope(s.Version, s.Seq, s.ReceivedAt, s.ClockSuspect));
        }
    }
}
