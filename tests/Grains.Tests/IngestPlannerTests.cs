using PumpFleet.Contracts.Events;
using PumpFleet.Contracts.Grains;
using PumpFleet.Domain.Pumps;
using static PumpFleet.Grains.Tests.Ev;

namespace PumpFleet.Grains.Tests;

public sealed class IngestPlannerTests
{
    private static PumpState Paired(DeviceInfo? device = null) =>
        Fold(device is null ? [new PumpPaired { At = T0, HubId = "H1" }] : [new PumpPaired { At = T0, HubId = "H1" }, new DeviceIdentified { At = T0, Device = device }]);

    private static IngestBatch Batch(params DeviceEvent[] events) => new() { HubId = "H1", ReceivedAt = T0.AddDays(30), Device = Device20, Events = events };

    [Fact]
    public void Plan_UnpairedOrOtherHub_RefusesWholeBatch()
    {
        var unpaired = IngestPlanner.Plan(new PumpState { Serial = "P1" }, Batch(Dose(1, T0, T0.AddHours(1), 0.1)), Guid.NewGuid);
        var other = IngestPlanner.Plan(Paired(), Batch(Dose(1, T0, T0.AddHours(1), 0.1)) with { HubId = "H2" }, Guid.NewGuid);

        Assert.Empty(unpaired.Events);
        Assert.Equal(RejectionCodes.NotPaired, Assert.Single(unpaired.Rejections).Code);
        Assert.Null(unpaired.Rejections[0].Seq);
        Assert.Equal(RejectionCodes.NotPaired, Assert.Single(other.Rejections).Code);
    }

    [Fact]
    public void Plan_FirstBatchWithoutDevice_IsRefused()
    {
        var plan = IngestPlanner.Plan(Paired(), Batch(Dose(1, T0, T0.AddHours(1), 0.1)) with { Device = null }, Guid.NewGuid);
        Assert.Equal(RejectionCodes.DeviceRequired, Assert.Single(plan.Rejections).Code);
        Assert.Empty(plan.Events);
    }

    [Fact]
    public void Plan_NewDevice_EmitsDeviceIdentifiedOnce()
    {
        var plan = IngestPlanner.Plan(Paired(), Batch(Dose(1, T0, T0.AddHours(1), 0.1)), Guid.NewGuid);
        Assert.IsType<DeviceIdentified>(plan.Events[0].Event);

        var same = IngestPlanner.Plan(Paired(Device20), Batch(Dose(1, T0, T0.AddHours(1), 0.1)), Guid.NewGuid);
        Assert.DoesNotContain(same.Events, e => e.Event is DeviceIdentified);
    }

    [Fact]
    public void Plan_Duplicates_AreDroppedBySeq_InStateAndInBatch()
    {
        var state = Paired(Device20);
        state.Apply(Dose(1, T0, T0.AddHours(1), 0.1), new EventEnvelope(3, 1, T0, false));
        var plan = IngestPlanner.Plan(state, Batch(Dose(1, T0, T0.AddHours(1), 0.1), Dose(2, T0.AddHours(1), T0.AddHours(2), 0.1)), Guid.NewGuid);

        Assert.Equal(1, plan.Duplicates);
        Assert.Equal([2L], plan.Events.Select(e => e.Seq!.Value));
    }

    [Fact]
    public void Plan_Gap_IsRecordedBeforeTheEventAfterIt()
    {
        var plan = IngestPlanner.Plan(Paired(Device20), Batch(Dose(1, T0, T0.AddHours(1), 0.1), Dose(4, T0.AddHours(3), T0.AddHours(4), 0.1)), Guid.NewGuid);
        var gap = Assert.IsType<GapRecorded>(plan.Events[1].Event);
        Assert.Equal((2L, 3L), (gap.FromSeq, gap.ToSeq));
        Assert.Equal(4, plan.Events[2].Seq);
    }

    [Fact]
    public void Plan_DomainRules_RejectByEventWithReason_AndKeepValidEvents()
    {
        var plan = IngestPlanner.Plan(Paired(Device20), Batch(
            Dose(1, T0, T0.AddHours(1), -0.1),
            Refill(2, T0.AddHours(1), added: 35),
            Level(3, T0.AddHours(1), 25),
            Dose(4, T0.AddHours(2), T0.AddHours(1), 0.1),
            Dose(5, T0.AddHours(1), T0.AddHours(2), 0.04),
            Dose(5, T0.AddHours(1), T0.AddHours(2), 0.04)), Guid.NewGuid);

        Assert.Equal(
            [(1L, RejectionCodes.NegativeVolume), (2L, RejectionCodes.DomainRule), (3L, RejectionCodes.DomainRule), (4L, RejectionCodes.DomainRule), (5L, RejectionCodes.SeqNotIncreasing)],
            plan.Rejections.Select(r => (r.Seq!.Value, r.Code)));
        Assert.Contains("20 mL reservoir", plan.Rejections[1].Reason, StringComparison.Ordinal);
        Assert.Single(plan.Events, e => e.Seq == 5);
        Assert.Equal(1, plan.AcceptedDeviceEvents);
    }

    [Fact]
    public void Plan_ClockRule_FutureBefore2010AndBackwards_AreSuspect()
    {
        var recv = T0.AddDays(30);
        var plan = IngestPlanner.Plan(Paired(Device20), Batch(
            Dose(1, recv.AddHours(-2), recv.AddHours(-1), 0.1),
            new StatusReported { Seq = 2, At = recv.AddMinutes(10) },
            new StatusReported { Seq = 3, At = new DateTimeOffset(2008, 1, 1, 0, 0, 0, TimeSpan.Zero) },
            new StatusReported { Seq = 4, At = recv.AddHours(-3) },
            new StatusReported { Seq = 5, At = recv.AddMinutes(4) }), Guid.NewGuid);

        Assert.Equal([false, true, true, true, false], plan.Events.Where(e => e.Seq is not null).Select(e => e.ClockSuspect));
    }

    [Fact]
    public void DeviceEventId_IsStablePerSerialAndSeq()
    {
        Assert.Equal(IngestPlanner.DeviceEventId("P1", 7), IngestPlanner.DeviceEventId("P1", 7));
        Assert.NotEqual(IngestPlanner.DeviceEventId("P1", 7), IngestPlanner.DeviceEventId("P1", 8));
        Assert.NotEqual(IngestPlanner.DeviceEventId("P1", 7), IngestPlanner.DeviceEventId("P2", 7));
    }
}
