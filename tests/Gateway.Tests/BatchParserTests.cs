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

    // The text checks read unescaped strings and names on their UTF-8 bytes (issue 15): each case must get what the
    // decoded check gives, whether the text is raw or escaped.
    [Theory]
    [InlineData("\"drug\":\"mor\u0085phine\"", "U+0085")]       // a C1 control as raw UTF-8 (C2 85)
    [InlineData("\"drug\":\"mor\\u0085phine\"", "U+0085")]      // the same, escaped
    [InlineData("\"drug\":\"mor\u007Fphine\"", "U+007F")]       // DEL, raw
    [InlineData("\"drug\":\"\u0085morphine\"", "U+0085")]       // first and last character: the quotes are not the text
    [InlineData("\"drug\":\"morphine\u009F\"", "U+009F")]
    [InlineData("\"drug\":\"mor\\u0000phine\"", "U+0000")]      // NUL, escaped (jsonb refuses it)
    [InlineData("\"drug\":\"mor\\udc00phine\"", "not valid Unicode")]
    [InlineData("\"dr\u0085ug\":\"morphine\"", "a property name contains the control character U+0085")]
    [InlineData("\"note\":[\"ok\",\"x\u0090\"]", "note[1] contains the control character U+0090")]
    public void Parse_ControlCharacterOrBadUnicode_RawOrEscaped_IsInvalidUnicode(string member, string reasonPart)
    {
        var evt = $$"""{"seq":1,"type":"refill","at":"2026-11-24T03:00:00Z","expectedResidualMl":2,"aspiratedResidualMl":1.5,"addedMl":38,"concentration":{"value":2000,"unit":"mcg/mL"},{{member}}}""";

        var bad = Assert.Single(Parse(Batch(evt)).Batch!.Invalid);

        Assert.Equal("invalid-unicode", bad.Code);
        Assert.Contains(reasonPart, bad.Reason, StringComparison.Ordinal);
    }

    [Fact]
    public void Parse_InvalidUtf8InAValue_IsInvalidUnicode()
    {
        var text = Batch("""{"seq":1,"type":"refill","at":"2026-11-24T03:00:00Z","expectedResidualMl":2,"aspiratedResidualMl":1.5,"addedMl":38,"concentration":{"value":2000,"unit":"mcg/mL"},"drug":"mor#phine"}""");
        var cut = text.IndexOf('#', StringComparison.Ordinal);
        var before = Encoding.UTF8.GetBytes(text[..cut]);
        var after = Encoding.UTF8.GetBytes(text[(cut + 1)..]);
        byte[] payload = [.. before, 0xC3, 0x28, .. after]; // C3 28: a lead byte without its continuation

        var bad = Assert.Single(BatchParser.Parse(payload).Batch!.Invalid);

        Assert.Equal("invalid-unicode", bad.Code);
        Assert.Contains("event seq 1.drug is", bad.Reason, StringComparison.Ordinal);
        Assert.Contains("not valid Unicode", bad.Reason, StringComparison.Ordinal);
    }

    [Fact]
    public void Parse_EscapedAndNonAsciiText_IsDecoded()
    {
        var r = Parse(Batch(
            """{"seq":1,"type":"refill","at":"2026-11-24T03:00:00Z","expectedResidualMl":2,"aspiratedResidualMl":1.5,"addedMl":38,"drug":"mor\u0070hine","concentration":{"value":2000,"unit":"µg/mL"}}""",
            """{"seq":2,"type":"dose.delivered","at":"2026-11-24T03:00:00\u005A","from":"2026-11-24T02:00:00Z","volumeMl":0.02,"kind":"b\u0061sal"}"""));

        Assert.Empty(r.Batch!.Invalid);
        var refill = Assert.IsType<RefillPerformed>(r.Batch.Events[0]);
        Assert.Equal("morphine", refill.Drug);
        Assert.Equal("µg/mL", refill.Concentration.Unit);
        var dose = Assert.IsType<DoseDelivered>(r.Batch.Events[1]);
        Assert.Equal("basal", dose.Kind);
        Assert.Equal(new DateTimeOffset(2026, 11, 24, 3, 0, 0, TimeSpan.Zero), dose.At);
    }

    [Fact]
    public void RawBySeq_GivesAValidEventsTextWhenAsked_AndNothingForOthers()
    {
        var bad = """{"seq":3,"type":"status","at":"never"}""";
        var r = Parse(Batch(Dose(2), bad, Dose(5)));

        Assert.True(r.Batch!.RawBySeq.TryGetValue(2, out var second));
        Assert.Equal(Dose(2), second);
        Assert.True(r.Batch.RawBySeq.TryGetValue(5, out var fifth));
        Assert.Equal(Dose(5), fifth);
        Assert.False(r.Batch.RawBySeq.TryGetValue(3, out _)); // invalid: its text is in Invalid
        Assert.False(r.Batch.RawBySeq.TryGetValue(4, out _));
        Assert.Equal(bad, Assert.Single(r.Batch.Invalid).Raw);
    }
}
