using PumpFleet.Contracts.Events;
using PumpFleet.Contracts.Grains;
using PumpFleet.Contracts.Views;
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

    // Stored events carry these ids: a resend after an upgrade must get the same one (values of the first implementation).
    [Theory]
    [InlineData("P1", 7L, "8212ee5c-e4ef-5094-a8ec-d9745ff7671f")]
    [InlineData("SN-ü", 9007199254740991L, "9adf5caa-1a00-543c-999c-e19dae7feb6c")]
    public void DeviceEventId_IsTheNameBasedUuidOfSerialAndSeq(string serial, long seq, string expected) =>
        Assert.Equal(Guid.Parse(expected), IngestPlanner.DeviceEventId(serial, seq));

    [Fact]
    public void DeviceEventId_OfANameLongerThanTheStackBuffer_IsTheSameUuid() =>
        Assert.Equal(Guid.Parse("62a35137-f0bf-5a76-962e-fc6beb731c86"), IngestPlanner.DeviceEventId(new string('x', 400), 1));
}

public sealed class IngestPlannerSeqTests
{
    private static PumpState Paired() =>
        Fold([new PumpPaired { At = T0, HubId = "H1" }, new DeviceIdentified { At = T0, Device = Device20 }]);

    private static IngestBatch Batch(params DeviceEvent[] events) => new() { HubId = "H1", ReceivedAt = T0.AddDays(30), Device = Device20, Events = events };

    private static PumpState Apply(PumpState state, IngestPlan plan)
    {
        var v = state.Version;
        foreach (var p in plan.Events)
        {
            state.Apply(p.Event, new EventEnvelope(++v, p.Seq, p.ReceivedAt, p.ClockSuspect));
        }

        return state;
    }

    [Theory]
    [InlineData(1_000_001L, true)]
    [InlineData(1_000_000L, false)]
    [InlineData(9_223_372_036_854_775_807L, true)]
    [InlineData(9_007_199_254_740_992L, true)] // 2^53
    public void Plan_SeqBeyondTheWindow_IsRejectedAndMovesNothing(long seq, bool rejected)
    {
        var state = Paired();
        var plan = IngestPlanner.Plan(state, Batch(Dose(seq, T0, T0.AddHours(1), 0.1)), Guid.NewGuid);
        Apply(state, plan);

        if (rejected)
        {
            Assert.Equal(RejectionCodes.SeqOutOfRange, Assert.Single(plan.Rejections).Code);
            Assert.DoesNotContain(plan.Events, e => e.Seq is not null);
            Assert.Equal(0, state.LastSeq);
            Assert.Equal(0, state.Seqs.Watermark);
            Assert.Empty(state.Seqs.Missing);
        }
        else
        {
            Assert.Empty(plan.Rejections);
            Assert.Equal(seq, state.LastSeq);
        }
    }

    [Fact]
    public void Plan_Window_IsConfigurableAndMeasuredFromTheHighestStoredSeq()
    {
        var state = Apply(Paired(), IngestPlanner.Plan(Paired(), Batch(Dose(50, T0, T0.AddHours(1), 0.1)), Guid.NewGuid, seqWindow: 100));
        var plan = IngestPlanner.Plan(state, Batch(Dose(150, T0, T0.AddHours(1), 0.1), Dose(151, T0, T0.AddHours(1), 0.1)), Guid.NewGuid, seqWindow: 100);
        Assert.Equal([151L], plan.Rejections.Select(r => r.Seq!.Value));
    }

    [Fact]
    public void Plan_RejectedSeqs_AreAccountedSoTheWatermarkMovesPastThem()
    {
        var state = Paired();
        // seq 2 fails a domain rule here, seq 3 was refused by the gateway's parser, seq 5 is simply not sent yet.
        var plan = IngestPlanner.Plan(state, Batch(Dose(1, T0, T0.AddHours(1), 0.1), Dose(2, T0, T0.AddHours(1), -1), Dose(4, T0, T0.AddHours(1), 0.1), Dose(6, T0, T0.AddHours(1), 0.1))
            with { RejectedSeqs = [new RejectedSeq(3, "unknown-type"), new RejectedSeq(9, "seq-not-increasing")] }, Guid.NewGuid);
        Apply(state, plan);

        Assert.Equal(4, state.Seqs.Watermark);
        Assert.Equal([new SeqRange(5, 5)], state.Seqs.Missing);
        Assert.Equal(6, state.LastSeq);
        Assert.False(state.HasSeq(2));
        var rejected = Assert.Single(plan.Events.Select(e => e.Event).OfType<SeqsRejected>());
        Assert.Equal([2L, 3L], rejected.Rejected.Select(r => r.Seq));

        // A corrected resend of seq 2 is stored, not dropped as a duplicate.
        var again = IngestPlanner.Plan(state, Batch(Dose(2, T0, T0.AddHours(1), 0.1)), Guid.NewGuid);
        Assert.Equal(0, again.Duplicates);
        Assert.Single(again.Events, e => e.Seq == 2);
    }

    [Fact]
    public void Plan_EventsLost_ClosesTheGapAndIsStored_AnInvalidRangeIsRejected()
    {
        var state = Apply(Paired(), IngestPlanner.Plan(Paired(), Batch(Dose(1, T0, T0.AddHours(1), 0.1), Dose(10, T0, T0.AddHours(1), 0.1)), Guid.NewGuid));
        Assert.Equal(1, state.Seqs.Watermark);

        var lost = new EventsLost { Seq = 11, At = T0.AddHours(2), FromSeq = 2, ToSeq = 9, Reason = "hub-buffer-overflow" };
        var bad = new EventsLost { Seq = 12, At = T0.AddHours(2), FromSeq = 5, ToSeq = 12, Reason = "other" };
        var plan = IngestPlanner.Plan(state, Batch(lost, bad), Guid.NewGuid);
        Apply(state, plan);

        Assert.Equal(RejectionCodes.InvalidLostRange, Assert.Single(plan.Rejections).Code);
        Assert.Equal(12, state.Seqs.Watermark); // 12 itself is accounted for as rejected
        Assert.True(state.HasSeq(11));
        Assert.Equal([new SeqRange(2, 9)], state.Seqs.Lost);
        Assert.DoesNotContain(plan.Events, e => e.Event is GapRecorded);
    }
}
