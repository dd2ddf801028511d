using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Cryptography.X509Certificates;
using Microsoft.Extensions.Logging;
using MQTTnet.Adapter;
using MQTTnet.Diagnostics.Logger;
using MQTTnet.Formatter;
using MQTTnet.Exceptions;
using MQTTnet.Implementations;
using MQTTnet.Packets;
using MQTTnet.Protocol;
using MQTTnet.Server;
using PumpFleet.Gateway.Ingest;

namespace PumpFleet.Gateway.Mqtt;

/// <summary>
/// The embedded broker's TCP listeners, in place of MQTTnet's own <c>MqttTcpServerAdapter</c>, so that limits apply
/// before anything is trusted or buffered: every accepted connection passes the <see cref="ConnectionGate"/> (a cap
/// on unauthenticated connections), must authenticate within <c>ConnectTimeout</c>, and reads through a
/// <see cref="MqttFrameGuardStream"/> that refuses a packet whose fixed header announces more than
/// <c>MaxPacketSize</c> (<see cref="UnauthenticatedMaxPacketSize"/> until the client authenticated) before MQTTnet
/// allocates its body. Endpoints, TLS settings and socket options are taken from
/// the <see cref="MqttServerOptions"/> MQTTnet passes in, as its own adapter does.
/// </summary>
internal sealed partial class GuardedTcpServerAdapter(
    ConnectionGate gate,
    int maxPacketSize,
    TimeSpan connectTimeout,
    GatewayInstruments instruments,
    TimeProvider time,
    ILogger logger) : IMqttServerAdapter
{
    /// <summary>
    /// Largest packet before authentication: a CONNECT carries a client id, a user name, a secret and a small last
    /// will, nowhere near this; nobody unauthenticated gets to make the broker buffer more.
    /// </summary>
    public const int UnauthenticatedMaxPacketSize = 64 * 1024;

    /// <summary>Longest wait for the DISCONNECT of an over-size packet to be written (the client may not be reading).</summary>
    private static readonly TimeSpan FarewellTimeout = TimeSpan.FromSeconds(2);

    private readonly List<Socket> _listeners = [];
    private CancellationTokenSource? _stop;
    private MqttServerOptions? _options;
    private IMqttNetLogger? _mqttLogger;

    /// <inheritdoc />
    public Func<IMqttChannelAdapter, Task>? ClientHandler { get; set; }

    /// <inheritdoc />
    public Task StartAsync(MqttServerOptions options, IMqttNetLogger logger)
    {
        if (_stop is not null)
        {
            throw new InvalidOperationException("The listeners are already started.");
        }

        _options = options;
        _mqttLogger = logger;
        _stop = new CancellationTokenSource();
        if (options.DefaultEndpointOptions.IsEnabled)
        {
            Listen(options.DefaultEndpointOptions, null);
        }

        if (options.TlsEndpointOptions?.IsEnabled == true)
        {
            var certificate = options.TlsEndpointOptions.CertificateProvider?.GetCertificate()
                              ?? throw new ArgumentException("The TLS endpoint has no certificate.");
            if (!certificate.HasPrivateKey)
            {
                throw new ArgumentException("The TLS certificate must contain its private key.");
            }

            Listen(options.TlsEndpointOptions, options.TlsEndpointOptions);
        }

        return Task.CompletedTask;
    }

    /// <inheritdoc />
    public Task StopAsync()
    {
        Cleanup();
        return Task.CompletedTask;
    }

    /// <inheritdoc />
    public void Dispose() => Cleanup();

    private void Cleanup()
    {
        _stop?.Cancel();
        foreach (var socket in _listeners)
        {
            socket.Dispose();
        }

        _listeners.Clear();
        _stop?.Dispose();
        _stop = null;
    }

    private void Listen(MqttServerTcpEndpointBaseOptions endpoint, MqttServerTlsTcpEndpointOptions? tls)
    {
        foreach (var address in new[] { endpoint.BoundInterNetworkAddress, endpoint.BoundInterNetworkV6Address })
        {
            if (address.Equals(IPAddress.None) || (address.AddressFamily == AddressFamily.InterNetworkV6 && !Socket.OSSupportsIPv6))
            {
                continue;
            }

            var socket = new Socket(address.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
            try
            {
                if (address.AddressFamily == AddressFamily.InterNetworkV6)
                {
                    socket.DualMode = false; // IPv4 has its own listener on the same port
                }

                socket.NoDelay = endpoint.NoDelay;
                // Always: a gateway restarted after a crash must listen on its port again at once, while the dead
                // process's connections still sit in TIME_WAIT (Linux refuses the bind without SO_REUSEADDR; two
                // live listeners on one port are still refused).
                socket.SetSocketOption(SocketOptionLevel.Socket, SocketOptionName.ReuseAddress, true);

                socket.Bind(new IPEndPoint(address, endpoint.Port));
                socket.Listen(endpoint.ConnectionBacklog);
            }
            catch
            {
                socket.Dispose();
                throw;
            }

            _listeners.Add(socket);
            var token = _stop!.Token;
            _ = Task.Run(() => AcceptLoopAsync(socket, endpoint, tls, token), CancellationToken.None);
        }
    }

    private async Task AcceptLoopAsync(Socket listener, MqttServerTcpEndpointBaseOptions endpoint, MqttServerTlsTcpEndpointOptions? tls, CancellationToken ct)
    {
        while (!ct.IsCancellationRequested)
        {
            Socket client;
            try
            {
                client = await listener.AcceptAsync(ct).ConfigureAwait(false);
            }
            catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException)
            {
                return;
            }
            catch (SocketException e) when (e.SocketErrorCode is SocketError.ConnectionAborted or SocketError.ConnectionReset)
            {
                continue;
            }
            catch (SocketException e)
            {
                LogAcceptFailed(e);
                await Task.Delay(TimeSpan.FromMilliseconds(100), time, ct).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
                continue;
            }

            _ = Task.Run(() => HandleAsync(client, endpoint, tls, ct), CancellationToken.None);
        }
    }

    private async Task HandleAsync(Socket socket, MqttServerTcpEndpointBaseOptions endpoint, MqttServerTlsTcpEndpointOptions? tls, CancellationToken ct)
    {
        var remote = socket.RemoteEndPoint;
        var connection = gate.Admit(remote?.ToString() ?? "?");
        IMqttChannelAdapter? adapter = null;
        Stream? stream = null;
        try
        {
            if (connection.Admission == Admission.Closed)
            {
                Refuse(connection, "closed at once, twice the cap");
                return;
            }

            if (connection.Admission == Admission.Refused)
            {
                Refuse(connection, "answered ServerBusy");
            }

            // Accept to authentication within ConnectTimeout, whatever the client does meanwhile (a slow TLS
            // handshake, a CONNECT sent a byte at a time, nothing at all). MQTTnet's own CONNECT wait is 100 s.
            using var deadline = new CancellationTokenSource(connectTimeout, time);
            using var onDeadline = deadline.Token.Register(() =>
            {
                if (!connection.Authenticated)
                {
                    instruments.OnDisconnect(DisconnectReasons.ConnectTimeout);
                    LogConnectTimeout(connection.Remote, connectTimeout);
                    socket.Dispose();
                }
            });

            socket.NoDelay = endpoint.NoDelay;
            if (endpoint.LingerState is not null)
            {
                socket.LingerState = endpoint.LingerState;
            }

            stream = new NetworkStream(socket, ownsSocket: true);
            X509Certificate2? clientCertificate = null;
            if (tls is not null)
            {
                var ssl = new SslStream(stream, leaveInnerStreamOpen: false, tls.RemoteCertificateValidationCallback);
                stream = ssl;
                await ssl.AuthenticateAsServerAsync(new SslServerAuthenticationOptions
                {
                    ServerCertificate = tls.CertificateProvider.GetCertificate(),
                    ClientCertificateRequired = tls.ClientCertificateRequired,
                    EnabledSslProtocols = tls.SslProtocol,
                    CertificateRevocationCheckMode = tls.CheckCertificateRevocation ? X509RevocationMode.Online : X509RevocationMode.NoCheck,
                    EncryptionPolicy = EncryptionPolicy.RequireEncryption,
                    CipherSuitesPolicy = tls.CipherSuitesPolicy,
                }, deadline.Token).ConfigureAwait(false);
                clientCertificate = ssl.RemoteCertificate is null ? null
                    : ssl.RemoteCertificate as X509Certificate2 ?? X509CertificateLoader.LoadCertificate(ssl.RemoteCertificate.Export(X509ContentType.Cert));
            }

            // The guard reads the plaintext (inside TLS), where the MQTT framing is.
            var preAuthLimit = Math.Min(maxPacketSize, UnauthenticatedMaxPacketSize);
            MqttChannelAdapter? sender = null;
            MqttFrameGuardStream? guard = null;
            guard = new MqttFrameGuardStream(stream, () => connection.Authenticated ? maxPacketSize : preAuthLimit,
                (violation, announced) => OnViolation(connection, violation, announced),
                (violation, token) => SayPacketTooLargeAsync(connection, violation, sender, guard!, token));
            stream = guard;
            var channel = new MqttTcpChannel(stream, listenerEndPoint(socket), remote, clientCertificate);
            var formatter = new MqttPacketFormatterAdapter(new MqttBufferWriter(_options!.WriterBufferSize, _options.WriterBufferSizeMax));
            var channelAdapter = new MqttChannelAdapter(channel, formatter, _mqttLogger!) { AllowPacketFragmentation = endpoint.AllowPacketFragmentation };
            sender = channelAdapter;
            adapter = channelAdapter;
            gate.Attach(channelAdapter, connection);
            using (channelAdapter)
            {
                if (ClientHandler is { } handler)
                {
                    await handler(channelAdapter).ConfigureAwait(false);
                }
            }
        }
        catch (Exception e) when (e is IOException or SocketException or ObjectDisposedException or OperationCanceledException
                                      or System.Security.Authentication.AuthenticationException)
        {
            // The peer went away, the TLS handshake failed or the connect deadline closed the socket.
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            LogConnectionFailed(connection.Remote, e);
        }
        finally
        {
            gate.Closed(adapter, connection);
            try
            {
                if (stream is not null)
                {
                    await stream.DisposeAsync().ConfigureAwait(false);
                }
            }
            catch (Exception e) when (e is IOException or SocketException or ObjectDisposedException)
            {
                // Already broken; nothing left to release.
            }

            socket.Dispose();
        }

        static EndPoint? listenerEndPoint(Socket s)
        {
            try
            {
                return s.LocalEndPoint;
            }
            catch (ObjectDisposedException)
            {
                return null;
            }
        }
    }

    /// <summary>
    /// MQTT 5 after the CONNACK: tells the client why before the connection closes (DISCONNECT 0x95, Packet too
    /// large). Sent through MQTTnet's own <c>SendPacketAsync</c>, which serialises it with every other packet of the
    /// connection (its send lock), so it can never land inside another packet; afterwards the guard refuses further
    /// writes. MQTT 3.1.1 has no server DISCONNECT, and before authentication nothing is owed: both are just closed.
    /// </summary>
    private async Task SayPacketTooLargeAsync(GatedConnection connection, FrameViolation violation, MqttChannelAdapter? sender,
        MqttFrameGuardStream guard, CancellationToken ct)
    {
        if (violation != FrameViolation.TooLarge || !connection.Authenticated || sender is null ||
            sender.PacketFormatterAdapter.ProtocolVersion != MqttProtocolVersion.V500)
        {
            return;
        }

        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(ct);
        timeout.CancelAfter(FarewellTimeout);
        try
        {
            await sender.SendPacketAsync(new MqttDisconnectPacket
            {
                ReasonCode = MqttDisconnectReasonCode.PacketTooLarge,
                ReasonString = $"Packets are limited to {maxPacketSize} bytes.",
            }, timeout.Token).ConfigureAwait(false);
        }
        catch (Exception e) when (e is MqttCommunicationException or IOException or SocketException or ObjectDisposedException or OperationCanceledException)
        {
            // The client is gone or not reading: it is closed without the farewell.
        }
        finally
        {
            guard.CloseWrites();
        }
    }

    private void Refuse(GatedConnection connection, string how)
    {
        instruments.OnDisconnect(DisconnectReasons.TooManyPending);
        LogTooManyPending(connection.Remote, gate.Pending, how);
    }

    private void OnViolation(GatedConnection connection, FrameViolation violation, long announced)
    {
        if (violation == FrameViolation.TooLarge)
        {
            instruments.OnDisconnect(DisconnectReasons.PacketTooLarge);
            LogPacketTooLarge(connection.HubId ?? "(not authenticated)", connection.Remote, announced,
                connection.Authenticated ? maxPacketSize : Math.Min(maxPacketSize, UnauthenticatedMaxPacketSize));
        }
        else
        {
            instruments.OnDisconnect(DisconnectReasons.ProtocolViolation);
            LogMalformedLength(connection.Remote);
        }
    }
}
