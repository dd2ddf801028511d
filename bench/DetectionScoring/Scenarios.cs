using System.Diagnostics;
using PumpFleet.Contracts.Events;
using PumpFleet.Domain.Detection;
using PumpFleet.Domain.Pumps;
using PumpFleet.Simulator.Generation;

namespace PumpFleet.DetectionScoring;

/// <summary>Delivery orders other than the simulator's: what the platform must score the same on.</summary>
public static class Reorder
{
    /// <summary>Batches out of order: per pump, one batch in three is held back and delivered just after the pump's next one.</summary>
    public static IEnumerable<FleetOutput> SwapBatches(IEnumerable<FleetOutput> outputs, int seed)
    {
        var rng = new Random(seed);
        var held = new Dictionary<string, PumpBatch>(StringComparer.Ordinal);
        foreach (var o in outputs)
        {
            if (o is not PumpBatch b)
            {
                yield return o;
                continue;
            }

            if (held.Remove(b.Serial, out var h))
            {
                yield return b;
                yield return h with { At = b.At };
                continue;
            }

            if (rng.Next(3) == 0)
            {
                held[b.Serial] = b;
                continue;
            }

            yield return b;
        }

        foreach (var h in held.Values)
        {
            yield return h;
        }
    }

    /// <summary>Every refill leaves its batch and arrives alone <paramref name="delay"/> later (a gap filled late).</summary>
    public static IEnumerable<FleetOutput> LateRefills(IEnumerable<FleetOutput> outputs, TimeSpan delay)
    {
        var pending = new PriorityQueue<PumpBatch, DateTimeOffset>();
        foreach (var o in outputs)
        {
            while (pending.TryPeek(out _, out var due) && due <= o.At)
            {
                yield return pending.Dequeue();
            }

            if (o is PumpBatch b && b.Events.Any(e => e.Event is RefillPerformed))
            {
                var rest = b.Events.Where(e => e.Event is not RefillPerformed).ToList();
                if (rest.Count > 0)
                {
                    yield return b with { Events = rest };
                }

                var late = b with { At = b.At + delay, Events = [.. b.Events.Where(e => e.Event is RefillPerformed)] };
                pending.Enqueue(late, late.At);
                continue;
            }

            yield return o;
        }

        while (pending.TryDequeue(out var p, out _))
        {
            yield return p;
        }
    }
}

/// <summary>
/// Baclofen pumps that report for 12 h and then go silent while the reservoir runs down (a hub silent for days):
/// when is depletion risk raised against the ledger's empty time, with and without re-evaluation on time?
/// </summary>
public static class SilentDepletion
{
    public sealed record Result(int Pumps, int RaisedAtLeast24h, int RaisedLater, int Never, TimeSpan? MedianLead, TimeSpan? MinLead);

    public static Result Run(AnomalyDetectionOptions options, bool reevaluate, int pumps, int seed)
    {
        var rng = new Random(seed);
        var replay = new FleetReplay(options) { ReevaluateOnTime = reevaluate };
        var t0 = new DateTimeOffset(2026, 3, 1, 0, 0, 0, TimeSpan.Zero);
        var device = new DeviceInfo { Model = "SM2-20", Firmware = "4.2.1", Lot = "L1", ReservoirCapacityMl = 20 };
        var empties = new Dictionary<string, DateTimeOffset>(StringComparer.Ordinal);
        var batches = new List<PumpBatch>();
        for (var i = 0; i < pumps; i++)
        {
            var serial = $"SIL{i:D4}";
            var start = t0.AddMinutes(i);
            var rate = Math.Round(0.5 + (rng.NextDouble() * 2.5), 3);
            var hoursLeftAtSilence = 36 + (rng.NextDouble() * 84);   // the ledger empties 36–120 h into the silence
            var added = Math.Round((rate * hoursLeftAtSilence / 24) + (rate * 0.5), 3);
            long seq = 0;
            var first = new List<DeviceEvent>
            {
                new PrescriptionSet { Seq = ++seq, At = start, Drug = "baclofen", Concentration = new Concentration { Value = 2, Unit = "mg/mL" }, Mode = "continuous", RateMlPerDay = rate, LowReservoirAlarmMl = 2 },
                new RefillPerformed { Seq = ++seq, At = start, ExpectedResidualMl = 0, AspiratedResidualMl = 0, AddedMl = added, Drug = "baclofen", Concentration = new Concentration { Value = 2, Unit = "mg/mL" } },
                new DeliveryStateChanged { Seq = ++seq, At = start, State = "running" },
            };
            batches.Add(Batch(serial, start, device, first));
            for (var h = 1; h <= 12; h++)
            {
                batches.Add(Batch(serial, start.AddHours(h), null,
                    [new DoseDelivered { Seq = ++seq, At = start.AddHours(h), From = start.AddHours(h - 1), VolumeMl = rate / 24, Kind = "basal" }]));
            }

            empties[serial] = start.AddHours(12 + hoursLeftAtSilence);
        }

        var end = empties.Values.Max().AddDays(1);
        var queue = new Queue<PumpBatch>(batches.OrderBy(b => b.At));
        for (var now = t0; now <= end; now += options.SilentCheckInterval)
        {
            while (queue.TryPeek(out var b) && b.At <= now)
            {
                replay.Send(queue.Dequeue());
            }

            replay.Tick(now);
        }

        var leads = new List<TimeSpan>();
        int atLeast = 0, later = 0, never = 0;
        foreach (var (serial, emptyAt) in empties)
        {
            var raised = replay.Detections.Where(d => d.Serial == serial && d.Kind == AnomalyKinds.DepletionRisk).OrderBy(d => d.At).FirstOrDefault();
            if (raised is null)
            {
                never++;
                continue;
            }

            var lead = emptyAt - raised.At;
            leads.Add(lead);
            if (lead >= TimeSpan.FromHours(24))
            {
                atLeast++;
            }
            else
            {
                later++;
            }
        }

        leads.Sort();
        return new Result(pumps, atLeast, later, never, leads.Count > 0 ? leads[leads.Count / 2] : null, leads.Count > 0 ? leads[0] : null);
    }

    private static PumpBatch Batch(string serial, DateTimeOffset at, DeviceInfo? device, IReadOnlyList<DeviceEvent> events) =>
        new(at, "HUB-SIL", serial, device, [.. events.Select(e => new GeneratedEvent(e, ""))]);
}

/// <summary>The fold alone, per event: the arrival-order fold (before issue 13) against the order-independent one.</summary>
public static class FoldCost
{
    /// <summary>Median nanoseconds per event over <paramref name="repeats"/> passes over every pump's log.</summary>
    public static double NanosPerEvent(IReadOnlyDictionary<string, List<(PumpEvent Event, EventEnvelope Envelope)>> logs, bool arrivalOrderBaseline, int repeats)
    {
        var events = logs.Values.Sum(l => l.Count);
        var samples = new List<double>();
        for (var r = 0; r < repeats; r++)
        {
            var sw = Stopwatch.StartNew();
            foreach (var (serial, log) in logs)
            {
                var state = new PumpState { Serial = serial, ArrivalOrderBaseline = arrivalOrderBaseline };
                for (var i = 0; i < log.Count; i++)
                {
                    state.Apply(log[i].Event, log[i].Envelope);
                    if (state.NeedsRebuild)
                    {
                        // As the grain does (its cost counted): a gap filled after the window replays the stream so far.
                        state = PumpState.Replay(serial, log.Take(i + 1));
                    }
                }
            }

            samples.Add(sw.Elapsed.TotalNanoseconds / events);
        }

        samples.Sort();
        return samples[samples.Count / 2];
    }
}
