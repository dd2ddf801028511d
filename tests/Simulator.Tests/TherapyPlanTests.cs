using System.Text.Json;
using PumpFleet.Domain.Therapies;
using PumpFleet.Simulator.Generation;

namespace PumpFleet.Simulator.Tests;

public sealed class TherapyPlanTests
{
    private static SimulatorOptions Fleet(int seed) => new()
    {
        Pumps = 200, Start = new DateTimeOffset(2026, 8, 1, 0, 0, 0, TimeSpan.Zero), Duration = TimeSpan.FromDays(90), Seed = seed, TrialFraction = 0.1,
    };

    [Theory]
    [InlineData(42)]
    [InlineData(7)]
    public void Every_planned_therapy_is_accepted_by_the_platforms_rules_and_the_plan_shows_each_path(int seed)
    {
        var o = Fleet(seed);
        var plan = TherapyPlan.Create(o);
        var phases = new List<string?>();
        foreach (var therapy in plan)
        {
            var state = new TherapyState { Id = therapy.Id };
            foreach (var command in therapy.Commands)
            {
                var d = TherapyDecisions.Decide(state, command, o.End.AddDays(1));
                Assert.True(d.Error is null, $"{therapy.Id} {command.Action}: {d.Error} {d.Field} {d.Reason}");
                foreach (var e in d.Events)
                {
                    state.Apply(e);
                }
            }

            phases.Add(state.Phase);
        }

        Assert.Contains("not-proceeding", phases);
        Assert.Contains("explanted", phases);
        Assert.True(phases.Count(p => p == "implanted") > 150, "most patients have a pump implanted");
        var replaced = plan.Where(t => t.Commands.Any(c => c.Action == "replace")).ToList();
        Assert.Equal(Enumerable.Range(0, o.Pumps).Count(i => TherapyPlan.IsReplaced(i, o.Pumps)), replaced.Count);
        Assert.Contains(plan, t => t.Commands.Any(c => c.TrialKind == "continuous" && c.ExternalPump is not null));
        // Every pump of the fleet belongs to exactly one therapy.
        var serials = plan.SelectMany(t => t.Commands).Where(c => c.Action is "implant" or "replace").Select(c => c.Serial!).ToList();
        Assert.Equal(o.Pumps, serials.Distinct(StringComparer.Ordinal).Count());
        Assert.Equal(serials.Count, serials.Distinct(StringComparer.Ordinal).Count());
    }

    [Fact]
    public void The_plan_is_the_same_for_the_same_seed()
        => Assert.Equal(JsonSerializer.Serialize(TherapyPlan.Create(Fleet(42))), JsonSerializer.Serialize(TherapyPlan.Create(Fleet(42))));
}
