using System.Globalization;
using PumpFleet.Contracts.Grains;
using PumpFleet.Simulator.Faults;

namespace PumpFleet.Simulator.Generation;

/// <summary>A simulated patient's therapy: its pseudonymous id and the clinicians' commands, in order.</summary>
public sealed record SimulatedTherapy(string Id, IReadOnlyList<TherapyCommand> Commands);

/// <summary>
/// The therapies behind a simulated fleet, derived from the options and the seed alone, so the quick start shows
/// therapies from trial to explant. One per pump, following the pump's own story: a pump in trial at the start gets
/// the trial it reports (single-dose, then multi-dose or continuous) and is implanted when the simulator implants it;
/// a pump implanted before the start gets a screening trial weeks before its implant date. One pump in twenty is
/// replaced at mid-run by the next pump of the fleet (which then has no therapy of its own); a few are explanted near
/// the end; and some patients are screened without proceeding (a therapy with no pump). These are clinicians'
/// records: the all-in-one silo sends them to the therapy grains (as the HTTP API would), not the hubs. The fleet's
/// pumps go on reporting after a replacement or an explant (the simulator does not model removal): the therapy
/// timeline shows each pump's implant window only.
/// </summary>
public static class TherapyPlan
{
    private const string By = "simulator";

    /// <summary>True when pump <paramref name="index"/> is replaced by the next pump at mid-run.</summary>
    public static bool IsReplaced(int index, int pumps) => index % 20 == 18 && index + 1 < pumps;

    /// <summary>The therapies of the fleet <paramref name="o"/> describes.</summary>
    public static IReadOnlyList<SimulatedTherapy> Create(SimulatorOptions o)
    {
        ArgumentNullException.ThrowIfNull(o);
        var plan = new FleetPlan(o, new FaultScenario());
        var therapies = new List<SimulatedTherapy>();
        foreach (var pump in plan.Pumps)
        {
            var i = pump.Index;
            if (i > 0 && IsReplaced(i - 1, o.Pumps))
            {
                continue;   // the replacement pump of the therapy before
            }

            var sim = new PumpSimulator(o, pump, []);
            var r = SeededRandom.For(o.Seed, "therapy", i);
            var commands = sim.TrialSteps.Count > 0
                ? Trial(r, sim.Indication, sim.Prescription.Drug.Name, sim.TrialSteps[0].At, sim.TrialSteps[^1].Phase["trial-".Length..], sim.ImplantAt, pump.Serial, proceed: true)
                : Trial(r, sim.Indication, sim.Prescription.Drug.Name, sim.ImplantAt.AddDays(-r.Next(20, 40)), PickKind(r), sim.ImplantAt, pump.Serial, proceed: true);
            commands.Add(new TherapyCommand { Action = "implant", By = By, At = sim.ImplantAt, Serial = pump.Serial });
            if (IsReplaced(i, o.Pumps))
            {
                commands.Add(new TherapyCommand
                {
                    Action = "replace", By = By, At = Max(o.Start + (o.Duration / 2), sim.ImplantAt.AddDays(1)), Serial = plan.Pumps[i + 1].Serial,
                    Note = "elective replacement (simulated)",
                });
            }
            else if (r.Chance(0.04) && o.End.AddDays(-5) > sim.ImplantAt)
            {
                commands.Add(new TherapyCommand { Action = "explant", By = By, At = o.End.AddDays(-r.Next(1, 5)), Reason = r.Chance(0.5) ? "therapy-ended" : "infection" });
            }

            therapies.Add(new SimulatedTherapy(IdOf(o, "P", i), commands));

            if (r.Chance(0.08))
            {
                // A patient screened at the same time whose trial did not help enough: no pump.
                var noPump = SeededRandom.For(o.Seed, "therapy-no-pump", i);
                var at = o.Start.AddDays(-noPump.Next(10, 60));
                therapies.Add(new SimulatedTherapy(IdOf(o, "N", i), Trial(noPump, sim.Indication, sim.Prescription.Drug.Name, at, PickKind(noPump), at.AddDays(10), pump.Serial, proceed: false)));
            }
        }

        return therapies;
    }

    private static DateTimeOffset Max(DateTimeOffset a, DateTimeOffset b) => a > b ? a : b;

    private static string PickKind(Random r) => r.NextDouble() switch { < 0.5 => "single-dose", < 0.8 => "multi-dose", _ => "continuous" };

    private static string IdOf(SimulatorOptions o, string kind, int i) =>
        string.Create(CultureInfo.InvariantCulture, $"TH-{o.SerialPrefix}-{o.Seed}-{kind}{i:D6}");

    // Registration, trial, response and decision, from the trial's start to before the implant time.
    private static List<TherapyCommand> Trial(Random r, string indication, string drug, DateTimeOffset trial, string kind, DateTimeOffset implant, string serial, bool proceed)
    {
        var decided = implant - ((implant - trial) / 4);
        var responded = decided - ((decided - trial) / 3);
        var before = r.Next(6, 10);
        // Proceeding usually follows at least half the pain gone; a patient who does not proceed got little relief.
        var after = proceed ? r.Next(0, (before / 2) + 1) : r.Next((before * 2 / 3) + 1, before + 1);
        return
        [
            new TherapyCommand { Action = "open", By = By, At = trial.AddDays(-7), Indication = indication },
            new TherapyCommand
            {
                Action = "trial", By = By, At = trial, TrialKind = kind, Drug = drug,
                Doses = kind == "multi-dose" ? 3 : null, ExternalPump = kind == "continuous" ? "EXT-" + serial : null,
            },
            new TherapyCommand { Action = "response", By = By, At = responded, PainBefore = before, PainAfter = after },
            new TherapyCommand { Action = "decision", By = By, At = decided, Proceed = proceed },
        ];
    }
}
