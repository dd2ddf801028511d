using PumpFleet.Contracts.Events;
using PumpFleet.Simulator.Faults;
using PumpFleet.Simulator.Generation;

namespace PumpFleet.Simulator.Tests;

/// <summary>Small, quiet fleets for tests: no random faults, outages, clock resets or trials unless a test asks.</summary>
internal static class TestFleet
{
    public static SimulatorOptions Quiet(int pumps, double days, int seed = 7) => new()
    {
        Pumps = pumps,
        Duration = TimeSpan.FromDays(days),
        Seed = seed,
        FaultRateMultiplier = 0,
        OfflineRatePerHubDay = 0,
        ClockResetRatePerPumpYear = 0,
        TrialFraction = 0,
    };

    public static List<FleetOutput> Run(SimulatorOptions o, string? scenarioJson = null) =>
        [.. new FleetGenerator(o, scenarioJson is null ? null : FaultScenario.Parse(scenarioJson)).Generate()];

    /// <summary>Every event of one pump in seq order.</summary>
    public static List<DeviceEvent> EventsOf(IEnumerable<FleetOutput> outputs, string serial) =>
        [.. outputs.OfType<PumpBatch>().Where(b => b.Serial == serial).SelectMany(b => b.Events).Select(e => e.Event)];

    public static List<GroundTruthRecord> Truth(IEnumerable<FleetOutput> outputs) => [.. outputs.OfType<FaultInjected>().Select(f => f.Record)];

    public static string Serial(int index) => $"SIM-P{index:D6}";

    /// <summary>The index of the first pump matching a condition on its initial prescription.</summary>
    public static int FindPump(SimulatorOptions o, Func<PumpProfile, Prescription, bool> match)
    {
        var plan = new FleetGenerator(o).Plan;
        foreach (var p in plan.Pumps)
        {
            var sim = new PumpSimulator(o, p, []);
            if (match(p, sim.Prescription))
            {
                return p.Index;
            }
        }

        throw new InvalidOperationException("no pump in the fleet matches");
    }
}
