namespace PumpFleet.Gateway.Hosting;

/// <summary>How the gateway meets the hubs.</summary>
public enum GatewayMode
{
    /// <summary>The gateway hosts an MQTTnet broker; the PUBACK waits for durable storage.</summary>
    Embedded,
    /// <summary>The gateway is a client of an MQTT 5 broker cluster with a shared subscription and manual acks.</summary>
    External,
}

/// <summary>MQTT settings of the gateway (section <c>Gateway:Mqtt</c>).</summary>
public sealed class MqttGatewayOptions
{
    /// <summary>Configuration section.</summary>
    public const string SectionName = "Gateway:Mqtt";

    /// <summary>Embedded broker or external broker client. Default: Embedded.</summary>
    public GatewayMode Mode { get; set; } = GatewayMode.Embedded;

    /// <summary>Plain-TCP port of the embedded broker. Default: 1883.</summary>
    public int Port { get; set; } = 1883;

    /// <summary>Address the embedded broker binds to (IPv4 or IPv6 literal, or <c>Any</c>). Default: Any.</summary>
    public string BindAddress { get; set; } = "Any";

    /// <summary>TLS port of the embedded broker, used when <see cref="TlsCertificatePath"/> is set. Default: 8883.</summary>
    public int TlsPort { get; set; } = 8883;

    /// <summary>PKCS#12 file with the embedded broker's certificate and private key; set it to enable TLS. Default: none.</summary>
    public string? TlsCertificatePath { get; set; }

    /// <summary>Password of the PKCS#12 file. Default: none.</summary>
    public string? TlsCertificatePassword { get; set; }

    /// <summary>Set false to serve TLS only (with a certificate). Default: true.</summary>
    public bool PlainEnabled { get; set; } = true;

    /// <summary>Messages being ingested at once across all hubs (embedded) or unacked from the broker (external: ReceiveMaximum). Default: 64.</summary>
    public int MaxInFlight { get; set; } = 64;

    /// <summary>How long a message may wait for a free in-flight slot before its hub is disconnected unacknowledged. Default: 10 s.</summary>
    public TimeSpan InFlightWait { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>
    /// Longest wait for the grain to store a batch (all attempts) before it is abandoned unacknowledged and the hub
    /// resends. Below the Orleans client's 30 s response timeout, so a call lost with a killed silo cannot hold a hub
    /// for longer. Default: 20 s.
    /// </summary>
    public TimeSpan IngestTimeout { get; set; } = TimeSpan.FromSeconds(20);

    /// <summary>
    /// One attempt of the ingest grain call: without an answer by then the call is made again (idempotent by seq),
    /// which reaches a new activation once a killed silo is declared dead. Keep it above the slowest healthy batch
    /// (every attempt adds load to a slow grain). At most <see cref="IngestTimeout"/>. Default: 5 s.
    /// </summary>
    public TimeSpan GrainCallAttemptTimeout { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>On shutdown, how long in-flight messages may finish before they are abandoned (unacked). Default: 15 s.</summary>
    public TimeSpan ShutdownDrain { get; set; } = TimeSpan.FromSeconds(15);

    /// <summary>
    /// A message that fails this many times in a row with the same unexpected exception (neither an input error the
    /// parser knows nor a dependency failure) is quarantined as <c>poison-message</c> and answered instead of being
    /// retried forever. Default: 3.
    /// </summary>
    public int PoisonThreshold { get; set; } = 3;

    /// <summary>
    /// Embedded: a hub's average message rate (token bucket). Above it the hub is disconnected without a PUBACK
    /// (reason <c>rate-limited</c>) and resends after reconnecting. Default: 200 a second.
    /// </summary>
    public double HubMessagesPerSecond { get; set; } = 200;

    /// <summary>Embedded: burst of the per-hub token bucket (a hub's backlog after an outage arrives at once). Default: 1000.</summary>
    public double HubMessageBurst { get; set; } = 1000;

    /// <summary>
    /// Embedded: largest MQTT packet (fixed header included) an authenticated hub may send (64 KiB before it has
    /// authenticated). The length in the packet's fixed header is checked before the body is read, so a bigger packet
    /// is never buffered: the connection is closed (reason <c>packet-too-large</c>). Keep it well above the parser's
    /// 256 KiB payload limit: a message between the two is read and answered <c>payload-too-large</c> (a PUBACK, so
    /// the hub drops it), one above this is not answered at all. Default: 1 MiB.
    /// </summary>
    public int MaxPacketSize { get; set; } = 1024 * 1024;

    /// <summary>
    /// Embedded: connections accepted but not yet authenticated, at most. Over the cap a connection is answered
    /// CONNACK <c>ServerBusy</c> without any credential check (and closed at once beyond twice the cap); counted as
    /// <c>too-many-pending</c>. Default: 500.
    /// </summary>
    public int MaxUnauthenticatedConnections { get; set; } = 500;

    /// <summary>
    /// Embedded: from accepting the TCP connection to a successful authentication (TLS handshake, CONNECT, password
    /// check), at most; then the connection is closed (<c>connect-timeout</c>). Keep it above <c>Gateway:Hubs:HashWait</c>.
    /// Default: 10 s.
    /// </summary>
    public TimeSpan ConnectTimeout { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>External broker client settings (Mode External).</summary>
    public ExternalBrokerOptions External { get; set; } = new();
}

/// <summary>The external broker (section <c>Gateway:Mqtt:External</c>).</summary>
public sealed class ExternalBrokerOptions
{
    /// <summary>Broker host name. Required in External mode.</summary>
    public string? Host { get; set; }

    /// <summary>Broker port. Default: 1883.</summary>
    public int Port { get; set; } = 1883;

    /// <summary>Connect with TLS. Default: false.</summary>
    public bool UseTls { get; set; }

    /// <summary>Skip server-certificate validation (development only). Default: false.</summary>
    public bool AllowUntrustedCertificates { get; set; }

    /// <summary>MQTT user name of the gateway. Default: none.</summary>
    public string? Username { get; set; }

    /// <summary>MQTT password of the gateway. Default: none.</summary>
    public string? Password { get; set; }

    /// <summary>Shared-subscription group of all gateway instances. Default: pumpfleet.</summary>
    public string SharedGroup { get; set; } = "pumpfleet";

    /// <summary>Client id; must be stable per instance for its persistent session. Default: pumpfleet-gateway-{machine name}.</summary>
    public string? ClientId { get; set; }

    /// <summary>Broker-side session lifetime after a disconnect, seconds (&gt; 0 keeps unacked messages). Default: 3600.</summary>
    public uint SessionExpirySeconds { get; set; } = 3600;

    /// <summary>
    /// A shared subscription spreads one pump's messages over several gateway instances, so a later batch can reach
    /// the pump grain before the first one (which carries <c>device</c>). For this long after receipt a
    /// <c>device-required</c> refusal is treated as "not yet": the message stays unacknowledged and is retried.
    /// Default: 30 s.
    /// </summary>
    public TimeSpan ReorderWindow { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>Workers in this instance; one pump's messages always go to the same worker, in order. Default: 16.</summary>
    public int Partitions { get; set; } = 16;
}
