using System.Text;
using PumpFleet.Contracts.Events;
using PumpFleet.Gateway.Protocol;
using static PumpFleet.Gateway.Tests.Infrastructure.Batches;

namespace PumpFleet.Gateway.Tests;

public sealed class BatchParserTests
{
    private static ParseResult Parse(string s) => BatchParser.Parse(Encoding.UTF8.GetBytes(s));

    [Fact]
    public void Parse_EveryV1Type_BuildsTheContractRecords()
    {
        var r = Parse(Batch(
            """{"seq":1,"type":"therapy.phase","at":"2026-11-24T03:00:00Z","phase":"implanted","indication":"spasticity"}""",
            """{"seq":2,"type":"prescription.set","at":"2026-11-24T03:00:00Z","drug":"baclofen","concentration":{"value":2000,"unit":"mcg/mL"},"mode":"flex","schedule":[{"start":"08:00","rateMlPerDay":0.6}],"bolus":{"doseMl":0.05,"lockoutMin":60,"maxPerDay":4},"lowReservoirAlarmMl":2}""",
            Dose(3),
            """{"seq":4,"type":"bolus.requested","at":"2026-11-24T03:00:00Z","granted":false,"reason":"lockout"}""",
            """{"seq":5,"type":"reservoir.level","at":"2026-11-24T03:00:00Z","volumeMl":12.5,"source":"measured"}""",
            """{"seq":6,"type":"refill","at":"2026-11-24T03:00:00Z","expectedResidualMl":2,"aspiratedResidualMl":1.5,"addedMl":38,"drug":"baclofen","concentration":{"value":2000,"unit":"mcg/mL"}}""",
            """{"seq":7,"type":"delivery.state","at":"2026-11-24T03:00:00+01:00","state":"stopped","reason":"mri"}""",
            """{"seq":8,"type":"alarm.raised","at":"2026-11-24T03:00:00Z","code":"LOW_RESERVOIR","severity":"non-critical"}""",
            """{"seq":9,"type":"alarm.cleared","at":"2026-11-24T03:00:00Z","code":"LOW_RESERVOIR"}""",
            """{"seq":10,"type":"status","at":"2026-11-24T03:00:00.123Z","batteryPct":80,"motor":"running"}""",
            """{"seq":11,"type":"pain.reported","at":"2026-11-24T03:00:00Z","score":4}"""));

        Assert.Null(r.Error);
        Assert.Empty(r.Batch!.Invalid);
        Assert.Equal(11, r.Batch.Events.Count);
        var rx = Assert.IsType<PrescriptionSet>(r.Batch.Events[1]);
        Assert.Equal("08:00", rx.Schedule!.Single().Start);
        Assert.Equal(4, rx.Bolus!.MaxPerDay);
        Assert.Equal(new DateTimeOffset(2026, 11, 24, 2, 0, 0, TimeSpan.Zero), r.Batch.Events[6].At);
        Assert.Equal("SM2-40", r.Batch.Device!.Model);
    }

    [Theory]
    [InlineData("""{"seq":1,"type":"dose.delivered","at":"2026-11-24T03:00:00Z","from":"2026-11-24T02:00:00Z","volumeMl":"x","kind":"basal"}""", "invalid-field", "'volumeMl' is the string \"x\"; expected a number")]
    [InlineData("""{"seq":1,"type":"status","at":"2026-11-24 03:00"}""", "invalid-timestamp", "field 'at' is \"2026-11-24 03:00\"; expected an RFC 3339 timestamp")]
    [InlineData("""{"seq":0,"type":"status","at":"2026-11-24T03:00:00Z"}""", "invalid-seq", "field 'seq' is 0; expected an integer ≥ 1")]
    [InlineData("""{"seq":1.5,"type":"status","at":"2026-11-24T03:00:00Z"}""", "invalid-field", "field 'seq' is 1.5; expected an integer")]
    [InlineData("""{"seq":1,"type":"therapy.phase","at":"2026-11-24T03:00:00Z","phase":"done"}""", "invalid-value", "field 'phase' is \"done\"; expected one of explanted, implanted")]
    [InlineData("""{"seq":1,"type":"prescription.set","at":"2026-11-24T03:00:00Z","drug":"morphine","concentration":{"value":25,"unit":"mg/mL"},"mode":"continuous"}""", "missing-field", "required field 'rateMlPerDay' is missing")]
    [InlineData("""{"seq":1,"type":"status","at":"2026-11-24T03:00:00Z","batteryPct":140}""", "invalid-value", "field 'batteryPct' is 140; expected a number from 0 to 100")]
    public void Parse_InvalidEvent_GivesCodeAndAReasonNamingFieldValueAndExpectation(string evt, string code, string reasonPart)
    {
        var r = Parse(Batch(evt));

        var bad = Assert.Single(r.Batch!.Invalid);
        Assert.Equal(code, bad.Code);
        Assert.Contains(reasonPart, bad.Reason, StringComparison.Ordinal);
        Assert.Equal(evt, bad.Raw);
    }

    [Fact]
    public void Parse_DuplicateSeq_RejectsTheSecondAndKeepsTheFirst()
    {
        var r = Parse(Batch(Dose(5), Dose(5), Dose(6)));

        Assert.Equal([5L, 6L], r.Batch!.Events.Select(e => e.Seq));
        Assert.Equal("seq-not-increasing", Assert.Single(r.Batch.Invalid).Code);
    }
}
