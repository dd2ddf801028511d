using PumpFleet.Contracts.Events;

namespace PumpFleet.Gateway.Protocol;

/// <summary>The outcome of parsing one <c>events</c> payload: either a message-level error or a batch.</summary>
public sealed record ParseResult(ParsedBatch? Batch, Problem? Error)
{
    /// <summary>A message-level failure: the whole message is quarantined.</summary>
    public static ParseResult Fail(string code, string reason) => new(null, new Problem(null, code, reason));
}

/// <summary>A well-formed batch: its valid events (seq strictly increasing) and the invalid ones.</summary>
public sealed record ParsedBatch(DeviceInfo? Device, IReadOnlyList<DeviceEvent> Events, IReadOnlyList<InvalidEvent> Invalid)
{
    /// <summary>The raw JSON of each valid event by seq, to quarantine it if the grain refuses it.</summary>
    public required IReadOnlyDictionary<long, string> RawBySeq { get; init; }
}

/// <summary>One invalid element of <c>events</c>, with its raw JSON text.</summary>
public sealed record InvalidEvent(long? Seq, string Code, string Reason, string Raw)
{
    /// <summary>The element's bytes exactly as received (the text may hold invalid UTF-8), for the quarantine.</summary>
    public byte[]? RawBytes { get; init; }
}

/// <summary>A reject: seq (null for the whole message), code and human reason.</summary>
public sealed record Problem(long? Seq, string Code, string Reason);
