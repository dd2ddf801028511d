using System.Globalization;
using PumpFleet.Contracts;
using PumpFleet.Contracts.Grains;

namespace PumpFleet.Simulator.Generation;

/// <summary>A simulated patient's therapy: its pseudonymous id and the clinicians' commands, in order.</summary>
public sealed record SimulatedTherapy(string Id, IReadOnlyList<TherapyCommand> Commands);

/// <summary>
/// The therapies behind a simulated fleet, derived from the options and the seed alone, so the quick start shows
/// therapies from trial to explant: one per pump (a screening trial of one of the three kinds weeks before the
/// fleet's start, its response and a decision to proceed, the implant of the pump before its first data); a
/// replacement for a few (the pump after it in the fleet takes over at the middle of the run, so that pump has no
/// therapy of its own); an explant for a few near the end; and some therapies that ended after the trial without a
/// pump. These are clinicians' records: the all-in-one silo sends them to the therapy grains (as the HTTP API
/// would), not the hubs. The fleet's pumps go on reporting after a replacement or explant; the therapy timeline shows
/// only each pump's implant window.
/// </summary>
public static class TherapyPlan
{
    private const string By = "simulator";

    /// <summary>One pump in twenty is replaced by the next one at mid-run.</summary>
    public static bool IsReplaced(int index, int pumps) => index % 20 == 18 && index + 1 < pumps;

    /// <summary>The therapies of the fleet <paramref name="o"/> describes.</summary>
    public static IReadOnlyList<SimulatedTherapy> Create(SimulatorOptions o)
    {
        ArgumentNullException.ThrowIfNull(o);
        var therapies = new List<SimulatedTherapy>();
        var indications = Vocabulary.Indications.Order(StringComparer.Ordinal).ToArray();
        for (var i = 0; i < o.Pumps; i++)
        {
            if (i > 0 && IsReplaced(i - 1, o.Pumps))
            {
                continue;   // the replacement pump of the therapy before
            }

            var r = SeededRandom.For(o.Seed, "therapy", i);
            var serial = PumpProfile.SerialOf(o.SerialPrefix, i);
            var implant = o.Start.AddDays(-r.Next(7, 31));
            var commands = Trial(r, implant, indications, proceed: true);
            commands.Add(new TherapyCommand { Action = "implant", By = By, At = implant, Serial = serial });
            if (IsReplaced(i, o.Pumps))
            {
                commands.Add(new TherapyCommand
                {
                    Action = "replace", By = By, At = o.Start + (o.Duration / 2), Serial = PumpProfile.SerialOf(o.SerialPrefix, i + 1),
                    Note = "elective replacement (simulated)",
                });
            }
            else if (r.Chance(0.04))
            {
                commands.Add(new TherapyCommand { Action = "explant", By = By, At = o.End.AddDays(-r.Next(1, 5)), Reason = r.Chance(0.5) ? "therapy-ended" : "infection" });
            }

            therapies.Add(new SimulatedTherapy(IdOf(o, "P", i), commands));

            if (r.Chance(0.08))
            {
                // A patient screened at the same time whose trial did not help enough: no pump.
                var noPump = SeededRandom.For(o.Seed, "therapy-no-pump", i);
                therapies.Add(new SimulatedTherapy(IdOf(o, "N", i), Trial(noPump, implant, indications, proceed: false)));
            }
        }

        return therapies;
    }

    private static string IdOf(SimulatorOptions o, string kind, int i) =>
        string.Create(CultureInfo.InvariantCulture, $"TH-{o.SerialPrefix}-{o.Seed}-{kind}{i:D6}");

    // Registration, trial, response and decision, all before the implant time.
    private static List<TherapyCommand> Trial(Random r, DateTimeOffset implant, string[] indications, bool proceed)
    {
        var kind = r.NextDouble() switch { < 0.5 => "single-dose", < 0.8 => "multi-dose", _ => "continuous" };
        var trialDays = kind switch { "single-dose" => 1, "multi-dose" => 3, _ => 7 };
        var trial = implant.AddDays(-r.Next(20, 40));
        var before = r.Next(6, 10);
        // Proceeding usually follows at least half the pain gone; a patient who does not proceed got little relief.
        var after = proceed ? r.Next(0, (before / 2) + 1) : r.Next((before * 2 / 3) + 1, before + 1);
        return
        [
            new TherapyCommand { Action = "open", By = By, At = trial.AddDays(-7), Indication = indications[r.Next(indications.Length)] },
            new TherapyCommand
            {
                Action = "trial", By = By, At = trial, TrialKind = kind, Drug = r.Chance(0.5) ? "morphine" : "baclofen",
                Doses = kind == "multi-dose" ? 3 : null, ExternalPump = kind == "continuous" ? $"EXT-{r.Next(1, 50):D2}" : null,
                EndedAt = trial.AddDays(trialDays),
            },
            new TherapyCommand { Action = "response", By = By, At = trial.AddDays(trialDays), PainBefore = before, PainAfter = after },
            new TherapyCommand { Action = "decision", By = By, At = trial.AddDays(trialDays + 2), Proceed = proceed },
        ];
    }
}
