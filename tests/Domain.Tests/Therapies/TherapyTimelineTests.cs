using PumpFleet.Contracts.Events;
using PumpFleet.Contracts.Views;
using PumpFleet.Domain.Therapies;

namespace PumpFleet.Domain.Tests.Therapies;

public sealed class TherapyTimelineTests
{
    private static readonly DateTimeOffset T0 = new(2026, 3, 1, 8, 0, 0, TimeSpan.Zero);

    private static TimelineEntry Item(string kind, string serial, int day) => new() { At = T0.AddDays(day), Kind = kind, Serial = serial, Summary = $"{kind} {serial} {day}" };

    [Fact]
    public void Pump_items_are_kept_inside_their_implant_window_and_merged_in_time_order_across_serials()
    {
        var s = new TherapyState { Id = "TH-1" };
        s.Apply(new TherapyOpened { At = T0, By = "a" });
        s.Apply(new TherapyTrialRecorded { At = T0.AddDays(1), By = "a", Kind = "single-dose", Doses = 1 });
        s.Apply(new TherapyResponseRecorded { At = T0.AddDays(2), By = "a", PainBefore = 8, PainAfter = 2 });
        s.Apply(new TherapyDecided { At = T0.AddDays(3), By = "a", Proceed = true });
        s.Apply(new PumpImplanted { At = T0.AddDays(10), By = "a", Serial = "SN-1" });
        s.Apply(new PumpExplanted { At = T0.AddDays(50), By = "a", Serial = "SN-1", Reason = "replacement" });
        s.Apply(new PumpImplanted { At = T0.AddDays(50), By = "a", Serial = "SN-2" });
        s.Apply(new PumpExplanted { At = T0.AddDays(90), By = "a", Serial = "SN-2", Reason = "malfunction" });

        var timeline = TherapyTimeline.Build(s.ToView(),
        [
            Item("refill", "SN-2", 60), Item("alarm", "SN-1", 5) /* bench test before the implant */, Item("refill", "SN-1", 30),
            Item("anomaly", "SN-1", 50), Item("alarm", "SN-1", 70) /* after its explant */, Item("refill", "SN-9", 40) /* not this therapy's */,
            Item("alarm", "SN-2", 90),
        ]);

        Assert.Equal(
        [
            "therapy.opened", "therapy.trial", "therapy.response", "therapy.decision", "therapy.implant SN-1", "refill SN-1",
            "therapy.explant SN-1", "therapy.implant SN-2", "anomaly SN-1", "refill SN-2", "therapy.explant SN-2", "alarm SN-2",
        ], timeline.Select(e => e.Serial is null ? e.Kind : $"{e.Kind} {e.Serial}"));
        Assert.Contains("8 → 2", timeline[2].Summary, StringComparison.Ordinal);
        Assert.Equal("75", timeline[2].Details!["reliefPct"]);
        Assert.Equal("warning", timeline[10].Severity);
    }
}
