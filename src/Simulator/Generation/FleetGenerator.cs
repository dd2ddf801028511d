using PumpFleet.Simulator.Faults;

namespace PumpFleet.Simulator.Generation;

/// <summary>
/// Generates the whole fleet's traffic without any transport: pure and deterministic for a given seed, options and
/// scenario. Benchmarks and the scoring harness drive the platform with <see cref="GenerateBatches"/>; the MQTT
/// runner replays <see cref="Generate"/> against a broker.
/// </summary>
public sealed class FleetGenerator
{
    private readonly SimulatorOptions _options;

    /// <summary>Creates a generator; the options must be valid.</summary>
    public FleetGenerator(SimulatorOptions options, FaultScenario? scenario = null)
    {
        options.ThrowIfInvalid();
        _options = options;
        Plan = new FleetPlan(options, scenario ?? new FaultScenario());
    }

    /// <summary>The fleet layout.</summary>
    public FleetPlan Plan { get; }

    /// <summary>Only the batches, in send order: (hubId, serial, batch JSON) via <see cref="PumpBatch.ToJson"/>.</summary>
    public IEnumerable<PumpBatch> GenerateBatches() => Generate().OfType<PumpBatch>();

    /// <summary>Only the ground truth, in the order faults take effect.</summary>
    public IEnumerable<GroundTruthRecord> GenerateGroundTruth() => Generate().OfType<FaultInjected>().Select(f => f.Record);

    /// <summary>Everything that happens, ordered by simulated time (stable within an instant).</summary>
    public IEnumerable<FleetOutput> Generate()
    {
        var o = _options;
        var pumps = Plan.Pumps.Select(p => new PumpSimulator(o, p, Plan.PumpFaults[p.Index])).ToArray();
        var hubs = Plan.Hubs.Select(h => new HubQueue(h, Plan.HubOutages[h.Index], o.Start)).ToArray();
        var items = new List<FleetOutput>();
        var events = new List<GeneratedEvent>();
        var truth = new List<GroundTruthRecord>();

        foreach (var record in Plan.CohortRecords)
        {
            yield return new FaultInjected(o.Start, record);
        }

        for (var t0 = o.Start; t0 < o.End;)
        {
            var t1 = t0 + o.ReportingInterval < o.End ? t0 + o.ReportingInterval : o.End;
            var last = t1 == o.End;
            items.Clear();
            foreach (var hub in hubs)
            {
                foreach (var (profile, i) in hub.Profile.Pumps.Select((p, i) => (p, i)))
                {
                    events.Clear();
                    truth.Clear();
                    pumps[profile.Index].Step(t0, t1, events, truth);
                    hub.Pending[i].AddRange(events);
                    foreach (var r in truth)
                    {
                        items.Add(new FaultInjected(r.Start, r));
                    }
                }

                hub.Advance(t0, t1, items);
                hub.Send(t1, o.BatchInterval, last, items);
            }

            // Stable sort: within an instant, hub and pump order decide.
            var ordered = items.Select((x, i) => (x, i)).OrderBy(p => p.x.At).ThenBy(p => p.i).Select(p => p.x).ToList();
            foreach (var item in ordered)
            {
                yield return item;
            }

            t0 = t1;
        }
    }
}
