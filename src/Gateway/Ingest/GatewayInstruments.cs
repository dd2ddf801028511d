using System.Diagnostics.Metrics;

namespace PumpFleet.Gateway.Ingest;

/// <summary>The gateway's metrics (meter <see cref="MeterName"/>); names follow docs/metrics.md.</summary>
public sealed class GatewayInstruments
{
    /// <summary>Meter name to register with OpenTelemetry.</summary>
    public const string MeterName = "PumpFleet.Gateway";

    private static readonly double[] DurationBuckets = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

    private readonly Counter<long> _messages;
    private readonly Counter<long> _events;
    private readonly Counter<long> _eventsRejected;
    private readonly Histogram<double> _duration;
    private readonly Counter<long> _dependencyFailures;
    private readonly Counter<long> _quarantine;
    private readonly Counter<long> _disconnects;
    private readonly Counter<long> _unexpected;
    private readonly Counter<long> _loginsThrottled;
    private readonly Counter<long> _quarantinePurged;
    private readonly Counter<long> _grainRetries;
    private int _inFlight;

    /// <summary>Creates the instruments on a meter from <paramref name="meterFactory"/>.</summary>
    public GatewayInstruments(IMeterFactory meterFactory)
    {
        var meter = meterFactory.Create(MeterName);
        _messages = meter.CreateCounter<long>("pumpfleet.gateway.messages.received", "{message}",
            "MQTT event batches received, by result: accepted, rejected (invalid, quarantined) or refused (not authorised).");
        _events = meter.CreateCounter<long>("pumpfleet.gateway.events.received", "{event}", "Events inside accepted batches.");
        _eventsRejected = meter.CreateCounter<long>("pumpfleet.gateway.events.rejected", "{event}", "Events rejected individually, by reject code.");
        _duration = meter.CreateHistogram("pumpfleet.gateway.ingest.duration", "s",
            "From message receipt to acknowledgement: validation, grain call, append, ack.",
            advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = DurationBuckets });
        meter.CreateObservableGauge("pumpfleet.gateway.inflight.messages", () => Volatile.Read(ref _inFlight), "{message}",
            "Messages received and not yet acknowledged or rejected.");
        _dependencyFailures = meter.CreateCounter<long>("pumpfleet.gateway.dependency.failures", "{failure}",
            "Failed calls to a dependency of the gateway (orleans, postgresql, broker).");
        _quarantine = meter.CreateCounter<long>("pumpfleet.quarantine.messages", "{item}",
            "Messages and events written to the quarantine, by code.");
        _disconnects = meter.CreateCounter<long>("pumpfleet.gateway.disconnects", "{connection}",
            "Hub connections the gateway closed, by reason (dependency-unavailable, ingest-timeout, backpressure, shutdown, unexpected-failure, rate-limited, packet-too-large, too-many-pending, connect-timeout, protocol-violation).");
        _unexpected = meter.CreateCounter<long>("pumpfleet.gateway.unexpected.failures", "{failure}",
            "Messages whose processing failed with an unexpected exception, by outcome: retried or poisoned (quarantined).");
        _loginsThrottled = meter.CreateCounter<long>("pumpfleet.gateway.logins.throttled", "{connection}",
            "Connection attempts refused without reading the registry or checking the password, by reason: backoff (the hub id or address is backing off after failed logins) or verification-budget (the gateway's budget of unproven checks is exhausted).");
        _quarantinePurged = meter.CreateCounter<long>("pumpfleet.quarantine.purged", "{item}",
            "Quarantine rows deleted by retention (age or row cap).");
        _grainRetries = meter.CreateCounter<long>("pumpfleet.gateway.grain.retries", "{call}",
            "Ingest grain calls made again because the previous attempt got no answer within GrainCallAttemptTimeout (typically: its silo died).");
    }

    /// <summary>Current in-flight count (for tests and shutdown).</summary>
    public int InFlight => Volatile.Read(ref _inFlight);

    /// <summary>A message entered processing.</summary>
    public void OnInFlightStarted() => Interlocked.Increment(ref _inFlight);

    /// <summary>A message left processing (acknowledged, rejected or abandoned).</summary>
    public void OnInFlightEnded() => Interlocked.Decrement(ref _inFlight);

    /// <summary>A message was fully handled.</summary>
    public void OnMessage(string result, int acceptedEvents, TimeSpan elapsed)
    {
        _messages.Add(1, new KeyValuePair<string, object?>("result", result));
        if (acceptedEvents > 0)
        {
            _events.Add(acceptedEvents);
        }

        _duration.Record(elapsed.TotalSeconds);
    }

    /// <summary>An event was rejected individually.</summary>
    public void OnEventRejected(string code) => _eventsRejected.Add(1, new KeyValuePair<string, object?>("code", code));

    /// <summary>An item went to the quarantine.</summary>
    public void OnQuarantined(string code) => _quarantine.Add(1, new KeyValuePair<string, object?>("code", code));

    /// <summary>The gateway closed a hub's connection.</summary>
    public void OnDisconnect(string reason) => _disconnects.Add(1, new KeyValuePair<string, object?>("reason", reason));

    /// <summary>A message failed unexpectedly and was retried or poisoned.</summary>
    public void OnUnexpectedFailure(bool poisoned) =>
        _unexpected.Add(1, new KeyValuePair<string, object?>("outcome", poisoned ? "poisoned" : "retried"));

    /// <summary>Quarantine rows were deleted by retention.</summary>
    public void OnQuarantinePurged(long rows) => _quarantinePurged.Add(rows);

    /// <summary>A login was refused before any registry read or PBKDF2 (<see cref="LoginThrottleReasons"/>).</summary>
    public void OnLoginThrottled(string reason) => _loginsThrottled.Add(1, new KeyValuePair<string, object?>("reason", reason));

    /// <summary>An ingest grain call got no answer within its attempt timeout and is made again.</summary>
    public void OnGrainCallRetried() => _grainRetries.Add(1);

    /// <summary>A dependency failed.</summary>
    public void OnDependencyFailure(string dependency) => _dependencyFailures.Add(1, new KeyValuePair<string, object?>("dependency", dependency));
}

/// <summary>Values of the <c>dependency</c> tag.</summary>
public static class Dependencies
{
    /// <summary>The Orleans cluster (grain calls).</summary>
    public const string Orleans = "orleans";
    /// <summary>PostgreSQL (credentials, quarantine, status, and the append behind the grain).</summary>
    public const string PostgreSql = "postgresql";
    /// <summary>The external MQTT broker.</summary>
    public const string Broker = "broker";
}

/// <summary>Values of the <c>result</c> tag.</summary>
public static class MessageResults
{
    /// <summary>Stored (possibly with some events rejected).</summary>
    public const string Accepted = "accepted";
    /// <summary>Invalid as a whole: quarantined and answered with a reject.</summary>
    public const string Rejected = "rejected";
    /// <summary>Not authorised: quarantined.</summary>
    public const string Refused = "refused";
}

/// <summary>Values of the <c>reason</c> tag of <c>pumpfleet.gateway.logins.throttled</c>.</summary>
public static class LoginThrottleReasons
{
    /// <summary>The hub id or the remote address is backing off after failed logins.</summary>
    public const string Backoff = "backoff";
    /// <summary>The gateway's budget of unproven credential checks is exhausted (a flood of failed logins).</summary>
    public const string VerificationBudget = "verification-budget";
}

/// <summary>Values of the <c>reason</c> tag of <c>pumpfleet.gateway.disconnects</c>.</summary>
public static class DisconnectReasons
{
    /// <summary>A dependency failed while the message was processed; the hub resends after reconnecting.</summary>
    public const string DependencyUnavailable = "dependency-unavailable";
    /// <summary>The grain did not answer within IngestTimeout.</summary>
    public const string IngestTimeout = "ingest-timeout";
    /// <summary>No in-flight slot within InFlightWait.</summary>
    public const string Backpressure = "backpressure";
    /// <summary>The gateway is shutting down.</summary>
    public const string Shutdown = "shutdown";
    /// <summary>An unexpected failure, below the poison threshold.</summary>
    public const string UnexpectedFailure = "unexpected-failure";
    /// <summary>The hub exceeded its message rate.</summary>
    public const string RateLimited = "rate-limited";
    /// <summary>The hub was revoked while connected.</summary>
    public const string Revoked = "revoked";
    /// <summary>The hub's secret was rotated after its session authenticated with the old one.</summary>
    public const string Rotated = "rotated";
    /// <summary>A packet's fixed header announced more than MaxPacketSize bytes; closed before its body was read.</summary>
    public const string PacketTooLarge = "packet-too-large";
    /// <summary>More connections than MaxUnauthenticatedConnections were waiting for authentication.</summary>
    public const string TooManyPending = "too-many-pending";
    /// <summary>The connection did not authenticate within ConnectTimeout.</summary>
    public const string ConnectTimeout = "connect-timeout";
    /// <summary>MQTTnet closed the connection because of a malformed packet or a protocol violation.</summary>
    public const string ProtocolViolation = "protocol-violation";
}
