using PumpFleet.Contracts.Grains;

namespace PumpFleet.Gateway.Protocol;

/// <summary>
/// Every machine-readable code the gateway sends on the <c>rejects</c> topic and writes to the quarantine
/// (docs/protocol.md lists them). Codes decided by the pump grain come from <see cref="RejectionCodes"/>.
/// </summary>
public static class RejectCodes
{
    // Message level: the whole message is quarantined and answered with one reject, seq null.
    /// <summary>The topic is not a hub protocol v1 topic, or an id in it does not match the id pattern.</summary>
    public const string InvalidTopic = "invalid-topic";
    /// <summary>The payload is larger than 256 KiB.</summary>
    public const string PayloadTooLarge = "payload-too-large";
    /// <summary>The payload is not JSON (or not a JSON object).</summary>
    public const string InvalidJson = "invalid-json";
    /// <summary>An object has the same key twice (which value counts differs between JSON readers).</summary>
    public const string DuplicateKey = "duplicate-key";
    /// <summary>
    /// A name or string value is not valid Unicode (a lone UTF-16 surrogate escape such as <c>\udc00</c>) or holds a
    /// control character. Message level when it is outside <c>events</c>, else event level.
    /// </summary>
    public const string InvalidUnicode = "invalid-unicode";
    /// <summary>
    /// The message failed the same unexpected way <c>PoisonThreshold</c> times in a row (neither an input error
    /// the parser knows nor a dependency failure): quarantined as poison instead of being retried forever.
    /// </summary>
    public const string PoisonMessage = "poison-message";
    /// <summary><c>v</c> is missing or not 1.</summary>
    public const string UnsupportedVersion = "unsupported-version";
    /// <summary>No <c>events</c> array.</summary>
    public const string MissingEvents = "missing-events";
    /// <summary><c>events</c> is empty.</summary>
    public const string EmptyEvents = "empty-events";
    /// <summary>More than 500 events.</summary>
    public const string TooManyEvents = "too-many-events";
    /// <summary>The <c>device</c> object is present but malformed.</summary>
    public const string InvalidDevice = "invalid-device";
    /// <summary>The first batch of a pump came without <c>device</c> (decided by the pump grain).</summary>
    public const string DeviceRequired = RejectionCodes.DeviceRequired;

    // Refusals: authorisation, the message is quarantined whole.
    /// <summary>A hub published on a topic of another hub id.</summary>
    public const string HubMismatch = "hub-mismatch";
    /// <summary>The pump is not paired with the publishing hub.</summary>
    public const string PumpNotPaired = RejectionCodes.NotPaired;
    /// <summary>
    /// External mode: the publishing hub is revoked in the registry (the broker had not reloaded its files yet). The
    /// message is quarantined and acknowledged to the broker; a revoked hub cannot read the answer.
    /// </summary>
    public const string HubRevoked = "hub-revoked";
    /// <summary>A hub published on a topic hubs may not publish to (<c>ack</c>, <c>rejects</c>, anything else).</summary>
    public const string TopicNotAllowed = "topic-not-allowed";

    // Event level: that event is quarantined and answered with a reject carrying its seq.
    /// <summary>An element of <c>events</c> is not a JSON object.</summary>
    public const string InvalidEvent = "invalid-event";
    /// <summary><c>type</c> is not a v1 event type.</summary>
    public const string UnknownType = "unknown-type";
    /// <summary>A required field is missing (or null).</summary>
    public const string MissingField = "missing-field";
    /// <summary>A field has the wrong JSON type (e.g. a string where a number belongs).</summary>
    public const string InvalidField = "invalid-field";
    /// <summary>A value is outside its vocabulary or range.</summary>
    public const string InvalidValue = "invalid-value";
    /// <summary>A volume is negative.</summary>
    public const string NegativeVolume = RejectionCodes.NegativeVolume;
    /// <summary><c>seq</c> is not an integer ≥ 1.</summary>
    public const string InvalidSeq = RejectionCodes.InvalidSeq;
    /// <summary><c>seq</c> is not greater than the previous valid event's seq in the batch.</summary>
    public const string SeqNotIncreasing = RejectionCodes.SeqNotIncreasing;
    /// <summary>Seq above 2^53 − 1 or beyond the window above the pump's highest stored seq: never stored, moves nothing.</summary>
    public const string SeqOutOfRange = RejectionCodes.SeqOutOfRange;
    /// <summary>An <c>events.lost</c> range that is not 1 ≤ fromSeq ≤ toSeq &lt; seq.</summary>
    public const string InvalidLostRange = RejectionCodes.InvalidLostRange;
    /// <summary>A timestamp is not RFC 3339.</summary>
    public const string InvalidTimestamp = "invalid-timestamp";

    // Connections (embedded broker): refused in the CONNACK and recorded in the quarantine without payload.
    /// <summary>Unknown or revoked hub, or wrong password (CONNACK BadUserNameOrPassword).</summary>
    public const string BadCredentials = "bad-credentials";
    /// <summary>Client id and user name differ or are not a valid hub id (CONNACK ClientIdentifierNotValid).</summary>
    public const string InvalidClientId = "invalid-client-id";

    // Status topic.
    /// <summary>A status payload is not an object with a boolean <c>online</c> (quarantined, no reply).</summary>
    public const string InvalidStatus = "invalid-status";
}
