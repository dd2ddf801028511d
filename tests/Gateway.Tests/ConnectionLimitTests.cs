using System.Collections.Concurrent;
using System.Diagnostics.Metrics;
using System.Net;
using System.Net.Sockets;
using Microsoft.Extensions.DependencyInjection;
using MQTTnet;
using PumpFleet.Gateway.Ingest;
using PumpFleet.Gateway.Mqtt;
using PumpFleet.Gateway.Tests.Infrastructure;
using PumpFleet.TestSupport;

namespace PumpFleet.Gateway.Tests;

/// <summary>
/// Limits before trust in the embedded broker: the packet size is checked from the fixed header before the body is
/// read, connections waiting for authentication are capped and time out, and MQTTnet's protocol-violation
/// disconnects are counted. Raw sockets play the hostile client, an MQTTnet client the honest hub.
/// </summary>
public sealed class ConnectionLimitTests(PostgresFixture pg, EmbeddedEnvironment env) : IClassFixture<EmbeddedEnvironment>, IAsyncLifetime
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(20);

    public async ValueTask InitializeAsync() => await env.EnsureStartedAsync(pg);

    public ValueTask DisposeAsync() => ValueTask.CompletedTask;

    [Fact]
    public async Task PacketAnnouncingMoreThanTheLimit_IsRefusedFromItsHeader_BeforeAnyBodyByteArrives()
    {
        await using var gw = await StartAsync(new());
        using var disconnects = new DisconnectCounter(gw);

        // A PUBLISH fixed header announcing 268,435,455 bytes (the MQTT maximum) and no body at all: MQTTnet would
        // allocate the whole body and wait for it; the guard closes the connection on the last length byte.
        using (var huge = await RawConnectAsync(gw.Port))
        {
            await huge.SendAsync(new byte[] { 0x30, 0xFF, 0xFF, 0xFF, 0x7F }, TestContext.Current.CancellationToken);
            Assert.True(await ClosedByServerAsync(huge), "the server closes the connection");
        }

        // Before authentication the limit is 64 KiB: a CONNECT announcing 70,000 bytes is refused the same way.
        using (var bigConnect = await RawConnectAsync(gw.Port))
        {
            await bigConnect.SendAsync(new byte[] { 0x10, 0xF0, 0xA2, 0x04 }, TestContext.Current.CancellationToken);
            Assert.True(await ClosedByServerAsync(bigConnect), "the server closes the connection");
        }

        await Eventually.TrueAsync(() => Task.FromResult(disconnects.Of(DisconnectReasons.PacketTooLarge) == 2), Patience, "both disconnects to be counted");
    }

    [Fact]
    public async Task AuthenticatedHub_PublishingOverTheLimit_IsDisconnectedUnacknowledged_AndSmallerPacketsPass()
    {
        await using var gw = await StartAsync(new());
        using var disconnects = new DisconnectCounter(gw);
        var hubId = $"hub-{Guid.NewGuid():N}"[..20];
        var serial = $"P-{Guid.NewGuid():N}"[..20];
        var secret = await gw.ProvisionAsync(hubId);
        await gw.Admin.PairAsync(hubId, serial, EventStore.Audit.AuditActor.System("test"), null, TestContext.Current.CancellationToken);
        await using var hub = TestHub.Create(hubId);
        Assert.Equal(MqttClientConnectResultCode.Success, (await hub.ConnectAsync(gw.Port, secret)).ResultCode);

        Assert.True((await hub.PublishAsync(serial, Batches.Doses(1, 2))).IsSuccess);
        // Over the parser's 256 KiB but under MaxPacketSize (1 MiB): read and answered, so the hub drops it.
        var big = Batches.Batch(true, Batches.Dose(3)).Replace("\"basal\"", $"\"{new string('x', 300_000)}\"", StringComparison.Ordinal);
        Assert.Equal(MqttClientPublishReasonCode.PayloadFormatInvalid, (await hub.PublishAsync(serial, big)).ReasonCode);
        // Over MaxPacketSize: not read, no PUBACK, the connection is closed.
        var huge = Batches.Batch(true, Batches.Dose(3)).Replace("\"basal\"", $"\"{new string('x', 1_100_000)}\"", StringComparison.Ordinal);
        await Assert.ThrowsAnyAsync<Exception>(() => hub.PublishAsync(serial, huge));
        await Eventually.TrueAsync(() => Task.FromResult(disconnects.Of(DisconnectReasons.PacketTooLarge) == 1), Patience, "the disconnect to be counted");

        // The hub is not wedged once it sends what the protocol allows.
        await Eventually.TrueAsync(async () =>
        {
            if (!hub.Client.IsConnected)
            {
                await hub.ConnectAsync(gw.Port, secret);
            }

            return (await hub.PublishAsync(serial, Batches.Doses(3, 12))).IsSuccess;
        }, Patience, "the hub to reconnect and be served", TimeSpan.FromMilliseconds(200));
        await hub.WaitForAckAsync(serial, 12);
    }

    [Fact]
    public async Task Mqtt5Hub_PublishingOverTheLimit_IsToldPacketTooLarge_BeforeTheConnectionCloses()
    {
        await using var gw = await StartAsync(new());
        using var disconnects = new DisconnectCounter(gw);
        var hubId = $"hub-{Guid.NewGuid():N}"[..20];
        var serial = $"P-{Guid.NewGuid():N}"[..20];
        var secret = await gw.ProvisionAsync(hubId);
        await gw.Admin.PairAsync(hubId, serial, EventStore.Audit.AuditActor.System("test"), null, TestContext.Current.CancellationToken);
        await using var hub = TestHub.Create(hubId);
        var told = new TaskCompletionSource<MqttClientDisconnectedEventArgs>(TaskCreationOptions.RunContinuationsAsynchronously);
        hub.Client.DisconnectedAsync += e =>
        {
            told.TrySetResult(e);
            return Task.CompletedTask;
        };
        Assert.Equal(MqttClientConnectResultCode.Success, (await hub.ConnectAsync(gw.Port, secret)).ResultCode);
        Assert.Equal(MQTTnet.Formatter.MqttProtocolVersion.V500, hub.Client.Options.ProtocolVersion);

        var huge = Batches.Batch(true, Batches.Dose(1)).Replace("\"basal\"", $"\"{new string('x', 1_100_000)}\"", StringComparison.Ordinal);
        await Assert.ThrowsAnyAsync<Exception>(() => hub.PublishAsync(serial, huge));
        var e = await told.Task.WaitAsync(Patience, TestContext.Current.CancellationToken);
        Assert.Equal(MqttClientDisconnectReason.PacketTooLarge, e.Reason);
        Assert.Equal(1, disconnects.Of(DisconnectReasons.PacketTooLarge));
        Assert.Empty(await EmbeddedEnvironment.DeviceEventsAsync(gw.Services, serial));
    }

    [Fact]
    public async Task OverTheCapOfUnauthenticatedConnections_AHubGetsServerBusy_AndIsServedOnceTheyAreGone()
    {
        await using var gw = await StartAsync(new() { ["Gateway:Mqtt:MaxUnauthenticatedConnections"] = "2", ["Gateway:Mqtt:ConnectTimeout"] = "00:01:00" });
        using var disconnects = new DisconnectCounter(gw);
        var hubId = $"hub-{Guid.NewGuid():N}"[..20];
        var secret = await gw.ProvisionAsync(hubId);
        var idle = new List<Socket> { await RawConnectAsync(gw.Port), await RawConnectAsync(gw.Port) };
        await using var hub = TestHub.Create(hubId);
        try
        {
            // Two silent connections fill the cap (accepted asynchronously: wait until both are counted).
            var gate = gw.Services.GetRequiredService<EmbeddedBroker>().PendingConnections;
            await Eventually.TrueAsync(() => Task.FromResult(gate() == 2), Patience, "two connections pending");

            var refused = await hub.ConnectAsync(gw.Port, secret, subscribe: false);
            Assert.Equal(MqttClientConnectResultCode.ServerBusy, refused.ResultCode);
            Assert.Equal(1, disconnects.Of(DisconnectReasons.TooManyPending));
        }
        finally
        {
            foreach (var s in idle)
            {
                s.Dispose();
            }
        }

        await Eventually.TrueAsync(async () => (await hub.ConnectAsync(gw.Port, secret)).ResultCode == MqttClientConnectResultCode.Success,
            Patience, "the hub to be accepted once the silent connections closed", TimeSpan.FromMilliseconds(200));
    }

    [Fact]
    public async Task ConnectionThatNeverAuthenticates_IsClosedAfterConnectTimeout()
    {
        await using var gw = await StartAsync(new() { ["Gateway:Mqtt:ConnectTimeout"] = "00:00:01" });
        using var disconnects = new DisconnectCounter(gw);
        using var socket = await RawConnectAsync(gw.Port);
        await socket.SendAsync(new byte[] { 0x10 }, TestContext.Current.CancellationToken); // a CONNECT that never finishes

        Assert.True(await ClosedByServerAsync(socket), "the server closes the silent connection");
        Assert.Equal(1, disconnects.Of(DisconnectReasons.ConnectTimeout));
        await Eventually.TrueAsync(() => Task.FromResult(gw.Services.GetRequiredService<EmbeddedBroker>().PendingConnections() == 0), Patience,
            "the closed connection to leave the pending count");
    }

    [Fact]
    public async Task MalformedPackets_CloseTheConnection_AndAreCountedAsProtocolViolations()
    {
        await using var gw = await StartAsync(new());
        using var disconnects = new DisconnectCounter(gw);

        // A CONNECT too short to hold a protocol name: MQTTnet throws while decoding it and drops the client.
        using (var shortConnect = await RawConnectAsync(gw.Port))
        {
            await shortConnect.SendAsync(new byte[] { 0x10, 0x03, 0x00, 0x01, 0x41 }, TestContext.Current.CancellationToken);
            Assert.True(await ClosedByServerAsync(shortConnect), "closed after a malformed CONNECT");
        }

        // A remaining length that runs over four bytes: malformed by MQTT 5 §1.5.5, stopped by the guard.
        using (var longLength = await RawConnectAsync(gw.Port))
        {
            await longLength.SendAsync(new byte[] { 0x10, 0x80, 0x80, 0x80, 0x80, 0x01 }, TestContext.Current.CancellationToken);
            Assert.True(await ClosedByServerAsync(longLength), "closed after an over-long length field");
        }

        await Eventually.TrueAsync(() => Task.FromResult(disconnects.Of(DisconnectReasons.ProtocolViolation) == 2), Patience, "both to be counted");
    }

    [Fact]
    public void FrameGuard_FollowsPacketsSplitAnywhere_AndStopsOnTheLengthByteThatExceedsTheLimit()
    {
        var violations = new List<(FrameViolation, long)>();
        var guard = new MqttFrameGuardStream(Stream.Null, () => 200, (v, n) => violations.Add((v, n)));
        // PINGREQ (no body), a 130-byte PUBLISH (two length bytes) split mid-length and mid-body, then a PUBLISH of 300.
        byte[] stream = [0xC0, 0x00, 0x30, 0x82, 0x01, .. new byte[130], 0x30, 0xAC, 0x02];
        Assert.True(guard.Inspect(stream.AsSpan(0, 4)));
        Assert.True(guard.Inspect(stream.AsSpan(4, 70)));
        Assert.True(guard.Inspect(stream.AsSpan(74, 61)));
        Assert.Empty(violations);
        Assert.True(guard.Inspect(stream.AsSpan(135, 2)));
        Assert.False(guard.Inspect(stream.AsSpan(137, 1)));
        Assert.Equal([(FrameViolation.TooLarge, 1 + 2 + 300L)], violations);
    }

    private Task<GatewayUnderTest> StartAsync(Dictionary<string, string?> settings) =>
        GatewayUnderTest.StartAsync(env.ConnectionString, env.Cluster.Grains, settings: settings);

    private static async Task<Socket> RawConnectAsync(int port)
    {
        var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        await socket.ConnectAsync(new IPEndPoint(IPAddress.Loopback, port), TestContext.Current.CancellationToken);
        return socket;
    }

    /// <summary>True when the server closes the connection (a read ends) within the patience; false if it stays open.</summary>
    private static async Task<bool> ClosedByServerAsync(Socket socket)
    {
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(TestContext.Current.CancellationToken);
        timeout.CancelAfter(Patience);
        var buffer = new byte[64];
        try
        {
            while (true)
            {
                if (await socket.ReceiveAsync(buffer, timeout.Token) == 0)
                {
                    return true;
                }
            }
        }
        catch (SocketException)
        {
            return true; // reset by the server
        }
        catch (OperationCanceledException) when (!TestContext.Current.CancellationToken.IsCancellationRequested)
        {
            return false;
        }
    }

    /// <summary>Counts <c>pumpfleet.gateway.disconnects</c> of one gateway (its own meter factory), by reason.</summary>
    private sealed class DisconnectCounter : IDisposable
    {
        private readonly MeterListener _listener = new();
        private readonly ConcurrentDictionary<string, long> _byReason = new();

        public DisconnectCounter(GatewayUnderTest gw)
        {
            var factory = gw.Services.GetRequiredService<IMeterFactory>();
            _listener.InstrumentPublished = (instrument, listener) =>
            {
                if (instrument.Name == "pumpfleet.gateway.disconnects" && ReferenceEquals(instrument.Meter.Scope, factory))
                {
                    listener.EnableMeasurementEvents(instrument);
                }
            };
            _listener.SetMeasurementEventCallback<long>((_, value, tags, _) =>
            {
                foreach (var tag in tags)
                {
                    if (tag.Key == "reason" && tag.Value is string reason)
                    {
                        _byReason.AddOrUpdate(reason, value, (_, v) => v + value);
                    }
                }
            });
            _listener.Start();
        }

        public long Of(string reason) => _byReason.GetValueOrDefault(reason);

        public void Dispose() => _listener.Dispose();
    }
}
