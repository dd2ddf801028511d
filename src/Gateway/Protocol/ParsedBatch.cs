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
    public required RawEvents RawBySeq { get; init; }
}

/// <summary>
/// The raw JSON text of a batch's valid events by seq, found when asked: only an event the grain refuses needs it, so
/// the parser keeps the payload and each valid event's place in <c>events</c> instead of a copy of every event's text
/// (two copies per event were a tenth of the gateway's garbage per message, issue 15).
/// </summary>
public sealed class RawEvents
{
    private readonly ReadOnlyMemory<byte> _payload;
    private readonly long[] _seqs;
    private readonly int[] _indexes;

    internal RawEvents(ReadOnlyMemory<byte> payload, long[] seqs, int[] indexes)
    {
        _payload = payload;
        _seqs = seqs;
        _indexes = indexes;
    }

    /// <summary>The element's JSON text (invalid UTF-8 decoded as U+FFFD), when <paramref name="seq"/> is a valid event of the batch.</summary>
    public bool TryGetValue(long seq, [System.Diagnostics.CodeAnalysis.NotNullWhen(true)] out string? text)
    {
        // The valid events' seqs strictly increase.
        var i = Array.BinarySearch(_seqs, seq);
        text = i >= 0 ? BatchParser.RawEventText(_payload, _indexes[i]) : null;
        return text is not null;
    }
}

/// <summary>One invalid element of <c>events</c>, with its raw JSON text.</summary>
public sealed record InvalidEvent(long? Seq, string Code, string Reason, string Raw)
{
    /// <summary>The element's bytes exactly as received (the text may hold invalid UTF-8), for the quarantine.</summary>
    public byte[]? RawBytes { get; init; }
}

/// <summary>A reject: seq (null for the whole message), code and human reason.</summary>
public sealed record Problem(long? Seq, string Code, string Reason);
