using PumpFleet.Contracts.Events;
using PumpFleet.Contracts.Views;

namespace PumpFleet.Contracts.Grains;

/// <summary>One hub message for one pump, already parsed and validated at the edge.</summary>
[GenerateSerializer, Immutable, Alias("pumpfleet.IngestBatch.v1")]
public sealed record IngestBatch
{
    /// <summary>The publishing hub (from the authenticated MQTT identity).</summary>
    [Id(0)] public required string HubId { get; init; }
    /// <summary>When the platform received the message (wall clock of the gateway).</summary>
    [Id(1)] public required DateTimeOffset ReceivedAt { get; init; }
    /// <summary>The batch's optional <c>device</c> object.</summary>
    [Id(2)] public DeviceInfo? Device { get; init; }
    /// <summary>The valid events of the message, seq strictly increasing.</summary>
    [Id(3)] public required IReadOnlyList<DeviceEvent> Events { get; init; }
    /// <summary>Optional transport id for tracing (not used for idempotency: (serial, seq) is).</summary>
    [Id(4)] public string? MessageId { get; init; }
    /// <summary>
    /// Seqs of events of this message that the gateway already refused for their content (parse or validation),
    /// so the grain can account for them: a rejected seq is answered and must not hold the watermark back.
    /// </summary>
    [Id(5)] public IReadOnlyList<RejectedSeq>? RejectedSeqs { get; init; }
}

/// <summary>What the pump grain did with a batch.</summary>
[GenerateSerializer, Immutable, Alias("pumpfleet.IngestResult.v1")]
public sealed record IngestResult
{
    /// <summary>
    /// The contiguous watermark, the <c>ack</c>'s <c>committedSeq</c>: the highest N such that every seq ≤ N is
    /// stored, was rejected, or was declared lost (0 when none).
    /// </summary>
    [Id(0)] public required long CommittedSeq { get; init; }
    /// <summary>Events stored by this call.</summary>
    [Id(1)] public required int Stored { get; init; }
    /// <summary>Events dropped because their seq was already stored.</summary>
    [Id(2)] public required int Duplicates { get; init; }
    /// <summary>Events (or, with a null seq, the whole batch) refused by domain rules.</summary>
    [Id(3)] public required IReadOnlyList<Rejection> Rejections { get; init; }
    /// <summary>Highest seq stored (the ack's <c>highestSeq</c>); 0 when none.</summary>
    [Id(4)] public long HighestSeq { get; init; }
    /// <summary>The first ranges above <see cref="CommittedSeq"/> not accounted for (at most 32), ascending.</summary>
    [Id(5)] public IReadOnlyList<SeqRange>? Missing { get; init; }
}

/// <summary>A refused event or batch: the payload of a <c>rejects</c> message.</summary>
[GenerateSerializer, Immutable, Alias("pumpfleet.Rejection.v1")]
public sealed record Rejection
{
    /// <summary>The refused event's seq, or null for the whole message.</summary>
    [Id(0)] public long? Seq { get; init; }
    /// <summary>Machine-readable kebab-case code.</summary>
    [Id(1)] public required string Code { get; init; }
    /// <summary>Human-readable reason.</summary>
    [Id(2)] public required string Reason { get; init; }
}

/// <summary>Codes of rejections decided by the pump grain (the gateway adds its own for parse errors).</summary>
public static class RejectionCodes
{
    /// <summary>The hub is not the one the pump is paired with.</summary>
    public const string NotPaired = "pump-not-paired";
    /// <summary>The first batch of a pump came without the <c>device</c> object.</summary>
    public const string DeviceRequired = "device-required";
    /// <summary>A value breaks a domain rule (e.g. a refill larger than the reservoir).</summary>
    public const string DomainRule = "domain-rule";
    /// <summary>A volume is negative.</summary>
    public const string NegativeVolume = "negative-volume";
    /// <summary>Seq not strictly increasing within the batch.</summary>
    public const string SeqNotIncreasing = "seq-not-increasing";
    /// <summary>Seq below 1.</summary>
    public const string InvalidSeq = "invalid-seq";
    /// <summary>Seq above 2^53 − 1, or more than the configured window above the pump's highest stored seq.</summary>
    public const string SeqOutOfRange = "seq-out-of-range";
    /// <summary>An <c>events.lost</c> range that is not below the event's own seq.</summary>
    public const string InvalidLostRange = "invalid-lost-range";

    /// <summary>The largest seq the protocol allows: 2^53 − 1, exact in every JSON implementation.</summary>
    public const long MaxSeq = (1L << 53) - 1;
}
