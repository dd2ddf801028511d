using PumpFleet.Contracts.Events;
using PumpFleet.Domain.Detection;
using PumpFleet.Domain.Pumps;
using PumpFleet.Domain.States;

namespace PumpFleet.Domain.Tests;

public sealed class PumpDecisionsTests
{
    private static readonly DateTimeOffset T0 = new(2026, 3, 1, 8, 0, 0, TimeSpan.Zero);

    // A pump heard from at T0: paired (version 1), optionally on a drug, optionally with a phase and an open anomaly.
    private static PumpState Pump(string? drug = null, string? phase = null, string? openAnomalyKind = null)
    {
        var s = new PumpState { Serial = "SN-D1" };
        var version = 0L;
        s.Apply(new PumpPaired { At = T0, HubId = "H1", By = "ops" }, new EventEnvelope(++version, null, T0, false));
        if (drug is not null)
        {
            s.Apply(new PrescriptionSet
            {
                Seq = 1, At = T0, Drug = drug, Concentration = new Concentration { Value = 500, Unit = "mcg/mL" },
                Mode = "continuous", RateMlPerDay = 0.5,
            }, new EventEnvelope(++version, 1, T0, false));
        }

        if (phase is not null)
        {
            s.Apply(new TherapyPhaseChanged { Seq = 2, At = T0, Phase = phase }, new EventEnvelope(++version, 2, T0, false));
        }

        if (openAnomalyKind is not null)
        {
            s.Apply(new AnomalyDetected
            {
                At = T0, AnomalyId = "a1", Kind = openAnomalyKind, Severity = AnomalySeverities.Warning, Summary = "x",
                Evidence = new Dictionary<string, double>(),
            }, new EventEnvelope(++version, null, T0, false));
        }

        return s;
    }

    [Fact]
    public void Pair_SameHub_DecidesNothing_OtherHub_IsOneEventAtNow()
    {
        var s = Pump();
        Assert.Null(PumpDecisions.Pair(s, "H1", "ops", T0.AddHours(1)));

        var e = PumpDecisions.Pair(s, "H2", "ops", T0.AddHours(1));
        Assert.NotNull(e);
        Assert.Equal((T0.AddHours(1), "H2", "ops"), (e.At, e.HubId, e.By));
    }

    [Fact]
    public void Acknowledge_OnlyAnOpenAnomaly_Once()
    {
        var s = Pump(openAnomalyKind: AnomalyKinds.FlowStall);
        Assert.Null(PumpDecisions.Acknowledge(s, "no-such", "dr.x", null, T0));

        var e = PumpDecisions.Acknowledge(s, "a1", "dr.x", "on it", T0.AddHours(1));
        Assert.NotNull(e);
        Assert.Equal(("a1", "dr.x", "on it", T0.AddHours(1)), (e.AnomalyId, e.By, e.Note, e.At));

        s.Apply(e, new EventEnvelope(s.Version + 1, null, T0.AddHours(1), false));
        Assert.Equal(AnomalyStatus.Acknowledged, s.Anomalies["a1"].Status);
        Assert.Null(PumpDecisions.Acknowledge(s, "a1", "dr.x", "again", T0.AddHours(2)));
    }

    [Fact]
    public void Resolve_OpenOrAcknowledged_ButNotUnknown()
    {
        var s = Pump(openAnomalyKind: AnomalyKinds.FlowStall);
        Assert.Null(PumpDecisions.Resolve(s, "no-such", "dr.x", null, T0));
        s.Apply(PumpDecisions.Acknowledge(s, "a1", "dr.x", null, T0)!, new EventEnvelope(s.Version + 1, null, T0, false));

        var e = PumpDecisions.Resolve(s, "a1", "dr.x", "fixed", T0.AddHours(1));
        Assert.NotNull(e);
        Assert.Equal(("a1", "dr.x", "fixed", T0.AddHours(1), false), (e.AnomalyId, e.By, e.Note, e.At, e.Automatic));

        s.Apply(e, new EventEnvelope(s.Version + 1, null, T0.AddHours(1), false));
        Assert.Empty(s.Anomalies);
        Assert.Null(PumpDecisions.Resolve(s, "a1", "dr.x", "again", T0.AddHours(2)));
    }

    [Fact]
    public void MarkSilent_OpensAWarning_WithWallTimeEvidence()
    {
        var s = Pump(drug: "morphine");
        var now = T0.AddHours(30);

        var e = PumpDecisions.MarkSilent(s, T0, TimeSpan.FromHours(24), now);

        Assert.NotNull(e);
        Assert.Equal((now, AnomalyKinds.Silent, AnomalySeverities.Warning), (e.At, e.Kind, e.Severity));
        Assert.Equal(AnomalyEngine.AnomalyId("SN-D1", AnomalyKinds.Silent, s.Version), e.AnomalyId);
        Assert.Equal("No data from pump SN-D1 (hub H1) for 30 h, longer than the 24 h window.", e.Summary);
        Assert.Equal(T0.ToUnixTimeSeconds(), e.Evidence["lastSeenAtUnixSeconds"]);
        Assert.Equal(30, e.Evidence["silentHours"]);
        Assert.Equal(24, e.Evidence["windowHours"]);
    }

    [Fact]
    public void MarkSilent_OnBaclofen_IsCritical()
    {
        var e = PumpDecisions.MarkSilent(Pump(drug: "baclofen"), T0, TimeSpan.FromHours(24), T0.AddHours(30));
        Assert.Equal(AnomalySeverities.Critical, e?.Severity);
    }

    [Fact]
    public void MarkSilent_DecidesNothing_ForAnEmptyStream_AnOpenSilent_NewerData_OrAnExplantedPump()
    {
        var window = TimeSpan.FromHours(24);
        var now = T0.AddHours(30);
        Assert.Null(PumpDecisions.MarkSilent(new PumpState { Serial = "SN-D0" }, T0, window, now));
        Assert.Null(PumpDecisions.MarkSilent(Pump(openAnomalyKind: AnomalyKinds.Silent), T0, window, now));
        Assert.Null(PumpDecisions.MarkSilent(Pump(), T0.AddSeconds(-2), window, now));   // heard from after the caller looked
        Assert.NotNull(PumpDecisions.MarkSilent(Pump(), T0.AddMilliseconds(-900), window, now));   // the same message, within the tolerance
        Assert.Null(PumpDecisions.MarkSilent(Pump(phase: TherapyPhases.Explanted), T0, window, now));
        Assert.NotNull(PumpDecisions.MarkSilent(Pump(phase: TherapyPhases.Implanted), T0, window, now));
    }
}
