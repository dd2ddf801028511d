using PumpFleet.Contracts.Events;
using PumpFleet.Contracts.Json;
using PumpFleet.EventStore;

namespace PumpFleet.EventStoreComparison;

/// <summary>
/// The event Marten stores: the same fields our row has in columns (seq, device time, receipt time, clock flag, hub)
/// plus the dose itself, so both stores write the same information per event.
/// </summary>
public sealed record DoseRecorded(
    long Seq, DateTimeOffset DeviceTime, DateTimeOffset ReceivedAt, bool ClockSuspect, string HubId,
    DateTimeOffset From, double VolumeMl, string Kind);

/// <summary>One event in both shapes, with one id, so every store gets the very same rows.</summary>
public sealed record BenchEvent(Guid Id, EventToAppend Ours, DoseRecorded Marten);

/// <summary>Builds the benchmark's rows.</summary>
public static class Rows
{
    private static readonly DateTimeOffset T0 = new(2026, 11, 1, 0, 0, 0, TimeSpan.Zero);

    /// <summary><paramref name="count"/> basal doses of one pump, seq 1…count.</summary>
    public static BenchEvent[] Make(int count, long firstSeq = 1)
    {
        var list = new BenchEvent[count];
        for (var i = 0; i < count; i++)
        {
            var seq = firstSeq + i;
            var at = T0.AddHours(seq);
            var received = at.AddSeconds(3);
            var dose = new DoseDelivered { Seq = seq, At = at, From = at.AddHours(-1), VolumeMl = 0.0208, Kind = "basal" };
            var id = Guid.CreateVersion7();
            list[i] = new BenchEvent(
                id,
                new EventToAppend(id, "dose.delivered", EventJson.Serialize(dose), seq, at, received, false, """{"hubId":"hub-0001"}"""),
                new DoseRecorded(seq, at, received, false, "hub-0001", dose.From, dose.VolumeMl, dose.Kind));
        }

        return list;
    }

    /// <summary>Batches of <paramref name="batchSize"/>.</summary>
    public static IEnumerable<ArraySegment<BenchEvent>> Batches(BenchEvent[] rows, int batchSize)
    {
        for (var i = 0; i < rows.Length; i += batchSize)
        {
            yield return new ArraySegment<BenchEvent>(rows, i, Math.Min(batchSize, rows.Length - i));
        }
    }
}
