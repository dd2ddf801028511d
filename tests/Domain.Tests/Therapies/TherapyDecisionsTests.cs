using PumpFleet.Contracts.Events;
using PumpFleet.Contracts.Grains;
using PumpFleet.Contracts.Views;
using PumpFleet.Domain.Therapies;

namespace PumpFleet.Domain.Tests.Therapies;

public sealed class TherapyDecisionsTests
{
    private static readonly DateTimeOffset T0 = new(2026, 3, 1, 8, 0, 0, TimeSpan.Zero);
    private static readonly DateTimeOffset Now = T0.AddDays(400);

    private static TherapyCommand Cmd(string action, int day) => new() { Action = action, By = "dr.a", At = T0.AddDays(day) };

    // Decides and folds, failing the test on a refusal: the happy path up to a given point.
    private static TherapyState Run(TherapyState s, TherapyCommand c)
    {
        var d = TherapyDecisions.Decide(s, c, Now);
        Assert.True(d.Error is null, $"{c.Action} refused: {d.Error} {d.Field} {d.Reason}");
        foreach (var e in d.Events)
        {
            s.Apply(e);
        }

        return s;
    }

    private static TherapyState Opened() => Run(new TherapyState { Id = "TH-2026-0001" }, Cmd("open", 0) with { Indication = "spasticity" });

    private static TherapyState Decided(bool proceed = true)
    {
        var s = Opened();
        Run(s, Cmd("trial", 1) with { TrialKind = "continuous", ExternalPump = "EXT-7", Drug = "baclofen" });
        Run(s, Cmd("response", 4) with { PainBefore = 8, PainAfter = 3 });
        return Run(s, Cmd("decision", 5) with { Proceed = proceed });
    }

    private static TherapyDecision Decide(TherapyState s, TherapyCommand c) => TherapyDecisions.Decide(s, c, Now);

    [Fact]
    public void AsOf_folds_only_what_had_happened_by_then()
    {
        var s = Decided();
        Run(s, Cmd("implant", 10) with { Serial = "SN-1" });
        Run(s, Cmd("explant", 200) with { Reason = "infection" });
        var events = History(s);
        Assert.Equal(TherapyPhaseNames.Explanted, s.Phase);

        Assert.Equal(TherapyPhaseNames.TrialContinuous, TherapyState.AsOf(s.Id, events, T0.AddDays(2)).Phase);
        var implanted = TherapyState.AsOf(s.Id, events, T0.AddDays(50));
        Assert.Equal(TherapyPhaseNames.Implanted, implanted.Phase);
        Assert.Null(Assert.Single(implanted.Pumps).ExplantedAt);
        Assert.Equal(TherapyPhaseNames.Explanted, TherapyState.AsOf(s.Id, events, T0.AddDays(200)).Phase);
        Assert.False(TherapyState.AsOf(s.Id, events, T0.AddDays(-1)).Exists);
    }

    // The events a therapy was folded from, rebuilt by deciding the same commands again on a fresh state.
    private static List<TherapyEvent> History(TherapyState done)
    {
        var events = new List<TherapyEvent>();
        var s = new TherapyState { Id = done.Id };
        foreach (var c in new[]
                 {
                     Cmd("open", 0) with { Indication = "spasticity" }, Cmd("trial", 1) with { TrialKind = "continuous", ExternalPump = "EXT-7", Drug = "baclofen" },
                     Cmd("response", 4) with { PainBefore = 8, PainAfter = 3 }, Cmd("decision", 5) with { Proceed = true },
                     Cmd("implant", 10) with { Serial = "SN-1" }, Cmd("explant", 200) with { Reason = "infection" },
                 })
        {
            var d = TherapyDecisions.Decide(s, c, Now);
            Assert.True(d.Error is null, $"{c.Action}: {d.Error}");
            foreach (var e in d.Events)
            {
                s.Apply(e);
                events.Add(e);
            }
        }

        Assert.Equal(done.Phase, s.Phase);
        return events;
    }

    [Fact]
    public void A_whole_therapy_from_trial_to_explant_across_a_replacement()
    {
        var s = Decided();
        Assert.Equal(TherapyPhaseNames.TrialContinuous, Run(Opened(), Cmd("trial", 1) with { TrialKind = "continuous", ExternalPump = "E-1" }).Phase);
        Run(s, Cmd("implant", 10) with { Serial = "SN-1" });
        Assert.Equal(TherapyPhaseNames.Implanted, s.Phase);
        Assert.Equal("SN-1", s.CurrentSerial);

        var replace = Decide(s, Cmd("replace", 100) with { Serial = "SN-2" });
        Assert.Null(replace.Error);
        Assert.Collection(replace.Events,
            e => Assert.Equal(new { Serial = "SN-1", Reason = "replacement" }, new { ((PumpExplanted)e).Serial, ((PumpExplanted)e).Reason }),
            e => Assert.Equal("SN-2", ((PumpImplanted)e).Serial));
        foreach (var e in replace.Events)
        {
            s.Apply(e);
        }

        Assert.Equal(TherapyPhaseNames.Implanted, s.Phase);
        Assert.Equal("SN-2", s.CurrentSerial);
        Assert.Equal(T0.AddDays(10), s.FirstImplantAt);
        Assert.Null(s.EndedAt);

        Run(s, Cmd("explant", 200) with { Reason = "infection" });
        Assert.Equal(TherapyPhaseNames.Explanted, s.Phase);
        Assert.Equal(T0.AddDays(200), s.EndedAt);
        Assert.Equal(
            [("SN-1", (DateTimeOffset?)T0.AddDays(100), "replacement"), ("SN-2", T0.AddDays(200), "infection")],
            s.Pumps.Select(p => (p.Serial, p.ExplantedAt, p.ExplantReason!)));
    }

    [Theory]
    [InlineData("TH-2026-0042")]
    [InlineData("c12.000123")]
    [InlineData("0007")]
    public void Pseudonymous_codes_are_accepted(string id) => Assert.Null(TherapyIds.Check(id));

    [Theory]
    [InlineData("John Smith", "spaces")]
    [InlineData("john.smith", "digit")]
    [InlineData("SmithJ", "digit")]
    [InlineData("jane@clinic7.org", "letters, digits")]
    [InlineData("", "required")]
    [InlineData("a1", "3 to 64")]
    public void Names_and_malformed_ids_are_refused_with_the_reason(string id, string because)
        => Assert.Contains(because, TherapyIds.Check(id), StringComparison.Ordinal);

    [Fact]
    public void A_name_shaped_id_is_refused_by_the_decision_too()
    {
        var d = Decide(new TherapyState { Id = "Jane Doe" }, Cmd("open", 0));
        Assert.Equal((TherapyDecision.Invalid, "id"), (d.Error, d.Field));
        Assert.Empty(d.Events);
    }

    [Fact]
    public void Commands_on_an_unknown_therapy_are_not_found()
        => Assert.Equal(TherapyDecision.NotFound, Decide(new TherapyState { Id = "TH-9" }, Cmd("trial", 1) with { TrialKind = "single-dose" }).Error);

    [Fact]
    public void Opening_twice_is_a_conflict() => Assert.Equal(TherapyDecision.Conflict, Decide(Opened(), Cmd("open", 1)).Error);

    [Fact]
    public void An_implant_needs_a_trial_its_response_and_a_decision_to_proceed()
    {
        var s = Opened();
        Assert.Equal(TherapyDecision.Conflict, Decide(s, Cmd("implant", 2) with { Serial = "SN-1" }).Error);
        Assert.Equal(TherapyDecision.Conflict, Decide(s, Cmd("response", 2) with { PainBefore = 7, PainAfter = 2 }).Error);
        Run(s, Cmd("trial", 1) with { TrialKind = "single-dose" });
        Assert.Equal(TherapyPhaseNames.TrialSingleDose, s.Phase);
        Assert.Equal(TherapyDecision.Conflict, Decide(s, Cmd("decision", 2) with { Proceed = true }).Error);
        Run(s, Cmd("response", 2) with { PainBefore = 7, PainAfter = 2 });
        Assert.Equal(TherapyDecision.Conflict, Decide(s, Cmd("implant", 2) with { Serial = "SN-1" }).Error);
        Run(s, Cmd("decision", 3) with { Proceed = true });
        Assert.Null(Decide(s, Cmd("implant", 4) with { Serial = "SN-1" }).Error);
    }

    [Fact]
    public void A_decision_not_to_proceed_ends_the_therapy()
    {
        var s = Decided(proceed: false);
        Assert.Equal(TherapyPhaseNames.NotProceeding, s.Phase);
        var d = Decide(s, Cmd("implant", 6) with { Serial = "SN-1" });
        Assert.Equal(TherapyDecision.Conflict, d.Error);
        Assert.Contains("ended", d.Reason, StringComparison.Ordinal);
    }

    [Fact]
    public void At_most_one_pump_is_implanted_at_a_time()
    {
        var s = Run(Decided(), Cmd("implant", 6) with { Serial = "SN-1" });
        var d = Decide(s, Cmd("implant", 7) with { Serial = "SN-2" });
        Assert.Equal(TherapyDecision.Conflict, d.Error);
        Assert.Contains("one pump at a time", d.Reason, StringComparison.Ordinal);
    }

    [Fact]
    public void Nothing_follows_an_explant_and_a_trial_never_follows_an_implant()
    {
        var s = Run(Decided(), Cmd("implant", 6) with { Serial = "SN-1" });
        Assert.Equal(TherapyDecision.Conflict, Decide(s, Cmd("trial", 7) with { TrialKind = "single-dose" }).Error);
        Run(s, Cmd("explant", 8) with { Reason = "therapy-ended" });
        Assert.Equal(TherapyDecision.Conflict, Decide(s, Cmd("replace", 9) with { Serial = "SN-2" }).Error);
        Assert.Equal(TherapyDecision.Conflict, Decide(s, Cmd("explant", 9) with { Reason = "other" }).Error);
    }

    [Fact]
    public void A_replacement_is_only_recorded_with_the_new_pump_which_must_be_new()
    {
        var s = Run(Decided(), Cmd("implant", 6) with { Serial = "SN-1" });
        Assert.Equal((TherapyDecision.Invalid, "reason"), Pick(Decide(s, Cmd("explant", 7) with { Reason = "replacement" })));
        Assert.Equal(TherapyDecision.Conflict, Decide(s, Cmd("replace", 7) with { Serial = "SN-1" }).Error);
        Assert.Equal((TherapyDecision.Invalid, "serial"), Pick(Decide(s, Cmd("replace", 7))));
        Assert.Equal(TherapyDecision.Conflict, Decide(s, Cmd("explant", 7) with { Reason = "malfunction", Serial = "SN-9" }).Error);
    }

    [Fact]
    public void Times_are_never_in_the_future_before_2010_or_before_the_latest_event()
    {
        var s = Decided();
        Assert.Equal((TherapyDecision.Invalid, "at"), Pick(TherapyDecisions.Decide(s, Cmd("implant", 0) with { Serial = "SN-1", At = Now.AddHours(1) }, Now)));
        Assert.Equal((TherapyDecision.Invalid, "at"), Pick(Decide(s, Cmd("implant", 0) with { Serial = "SN-1", At = new DateTimeOffset(2009, 12, 31, 0, 0, 0, TimeSpan.Zero) })));
        Assert.Equal(TherapyDecision.Conflict, Decide(s, Cmd("implant", 4) with { Serial = "SN-1" }).Error);
        Assert.Null(TherapyDecisions.Decide(s, Cmd("implant", 0) with { Serial = "SN-1", At = null }, Now).Error);
    }

    [Theory]
    [InlineData("single-dose", 2, null, "doses")]
    [InlineData("multi-dose", 1, null, "doses")]
    [InlineData("continuous", null, null, "externalPump")]
    [InlineData("continuous", 3, "EXT-1", "doses")]
    [InlineData("single-dose", null, "EXT-1", "externalPump")]
    [InlineData("intrathecal", null, null, "kind")]
    public void Trial_arguments_are_checked(string kind, int? doses, string? external, string field)
        => Assert.Equal((TherapyDecision.Invalid, field), Pick(Decide(Opened(), Cmd("trial", 1) with { TrialKind = kind, Doses = doses, ExternalPump = external })));

    [Theory]
    [InlineData(null, 3, "painBefore")]
    [InlineData(11, 3, "painBefore")]
    [InlineData(5, -1, "painAfter")]
    public void Pain_scores_are_0_to_10(int? before, int? after, string field)
    {
        var s = Run(Opened(), Cmd("trial", 1) with { TrialKind = "multi-dose", Doses = 3 });
        Assert.Equal((TherapyDecision.Invalid, field), Pick(Decide(s, Cmd("response", 2) with { PainBefore = before, PainAfter = after })));
    }

    [Fact]
    public void An_unknown_indication_is_refused()
        => Assert.Equal((TherapyDecision.Invalid, "indication"), Pick(Decide(new TherapyState { Id = "TH-1" }, Cmd("open", 0) with { Indication = "migraine" })));

    private static (string?, string?) Pick(TherapyDecision d) => (d.Error, d.Field);
}
