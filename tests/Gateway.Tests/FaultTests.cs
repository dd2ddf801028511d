using PumpFleet.EventStore.Audit;
using Microsoft.Extensions.DependencyInjection;
using MQTTnet;
using Npgsql;
using PumpFleet.EventStore.Local;
using PumpFleet.Gateway.Tests.Infrastructure;
using PumpFleet.TestSupport;
using static PumpFleet.Gateway.Tests.Infrastructure.Batches;

namespace PumpFleet.Gateway.Tests;

/// <summary>Gateway restarts and database outages: nothing acknowledged is lost, nothing is stored twice.</summary>
public sealed class FaultTests(PostgresFixture pg)
{
    private static string NewId(string prefix) => $"{prefix}-{Guid.NewGuid():N}"[..20];

    private static async Task<List<long>> StoredSeqsAsync(GatewayUnderTest gw, string serial) =>
        [.. (await EmbeddedEnvironment.DeviceEventsAsync(gw.Services, serial)).Select(e => e.Seq!.Value)];

    /// <summary>Connects, retrying while the gateway (or its credential store) is not back yet.</summary>
    private static async Task ReconnectAsync(TestHub hub, int port, string secret) =>
        await Eventually.TrueAsync(async () =>
        {
            if (hub.Client.IsConnected)
            {
                return true;
            }

            var r = await hub.ConnectAsync(port, secret);
            return r.ResultCode == MqttClientConnectResultCode.Success;
        }, TimeSpan.FromSeconds(60), "the hub to reconnect", TimeSpan.FromMilliseconds(200));

    /// <summary>Publishes until a PUBACK with success arrives (the hub's resend rule), reconnecting as needed.</summary>
    private static async Task ResendUntilAckedAsync(TestHub hub, int port, string secret, string serial, string payload) =>
        await Eventually.TrueAsync(async () =>
        {
            await ReconnectAsync(hub, port, secret);
            return (await hub.PublishAsync(serial, payload)).IsSuccess;
        }, TimeSpan.FromSeconds(90), "the batch to be acknowledged", TimeSpan.FromMilliseconds(200));

    [Fact]
    public async Task GatewayKilledMidBatch_HubResendsAboveCommittedSeq_EveryEventStoredExactlyOnce()
    {
        var cs = await pg.CreateDatabaseAsync("gwkill", typeof(Hosting.GatewayServiceCollectionExtensions).Assembly);
        await using var cluster = await PumpCluster.StartAsync(cs);
        var port = Ports.Free();
        // No drain: whatever is in flight at shutdown is abandoned unacknowledged, as when the process is killed.
        var settings = new Dictionary<string, string?> { ["Gateway:Mqtt:ShutdownDrain"] = "00:00:00" };
        var first = await GatewayUnderTest.StartAsync(cs, cluster.Grains, port, settings);
        var hubId = NewId("hub");
        var serial = NewId("P");
        var secret = await first.ProvisionAsync(hubId);
        await first.Admin.PairAsync(hubId, serial, AuditActor.System("test"), null, TestContext.Current.CancellationToken);
        await using var hub = TestHub.Create(hubId);
        Assert.Equal(MqttClientConnectResultCode.Success, (await hub.ConnectAsync(port, secret)).ResultCode);
        Assert.True((await hub.PublishAsync(serial, Doses(1, 100))).IsSuccess);
        var committed = (await hub.WaitForAckAsync(serial, 100)).Json.GetProperty("committedSeq").GetInt64();

        // A large batch is in flight when the gateway goes away.
        var inFlight = hub.PublishAsync(serial, Doses(101, 600));
        await first.DisposeAsync();
        try
        {
            await inFlight;
        }
        catch (Exception e) when (e is MQTTnet.Exceptions.MqttCommunicationException or OperationCanceledException or InvalidOperationException)
        {
            // Expected: the connection went away before a PUBACK.
        }

        await using var second = await GatewayUnderTest.StartAsync(cs, cluster.Grains, port, settings);
        // The hub resends everything above the committed seq it knows, then carries on.
        await ResendUntilAckedAsync(hub, port, secret, serial, Doses(committed + 1, 600));
        await ResendUntilAckedAsync(hub, port, secret, serial, Doses(601, 610));

        var stored = await StoredSeqsAsync(second, serial);
        Assert.Equal(Enumerable.Range(1, 610).Select(i => (long)i), stored);
    }

    [Fact]
    public async Task PostgresStoppedDuringIngest_NothingAcked_AfterRestartEverythingStored()
    {
        // A private server: stopping the shared one would break tests running in parallel.
        await using var server = await PrivatePostgres.StartAsync(durable: false, ct: TestContext.Current.CancellationToken);
        var cs = await CreateDatabaseAsync(server);
        await using var cluster = await PumpCluster.StartAsync(cs);
        await using var gateway = await GatewayUnderTest.StartAsync(cs, cluster.Grains,
            settings: new Dictionary<string, string?> { ["Gateway:Mqtt:IngestTimeout"] = "00:00:05" });
        var hubId = NewId("hub");
        var serial = NewId("P");
        var secret = await gateway.ProvisionAsync(hubId);
        await gateway.Admin.PairAsync(hubId, serial, AuditActor.System("test"), null, TestContext.Current.CancellationToken);
        await using var hub = TestHub.Create(hubId);
        Assert.Equal(MqttClientConnectResultCode.Success, (await hub.ConnectAsync(gateway.Port, secret)).ResultCode);
        Assert.True((await hub.PublishAsync(serial, Doses(1, 3))).IsSuccess);
        await hub.WaitForAckAsync(serial, 3);

        await server.StopAsync();
        var acked = false;
        try
        {
            acked = (await hub.PublishAsync(serial, Doses(4, 6))).IsSuccess;
        }
        catch (Exception e) when (e is MQTTnet.Exceptions.MqttCommunicationException or OperationCanceledException or InvalidOperationException)
        {
            // The gateway dropped the connection instead of acknowledging.
        }

        Assert.False(acked, "A batch was acknowledged while PostgreSQL was down.");
        Assert.False(hub.Client.IsConnected && acked);

        await server.RestartAsync();
        await ResendUntilAckedAsync(hub, gateway.Port, secret, serial, Doses(4, 6));
        await hub.WaitForAckAsync(serial, 6);

        Assert.Equal([1L, 2L, 3L, 4L, 5L, 6L], await StoredSeqsAsync(gateway, serial));
    }

    [Fact]
    public async Task PostgresStopped_HubDisconnects_LoggedAsStatusNotRecorded_NotAsAnUnacknowledgedMessage()
    {
        // Regression: a failed status write at a connection event was logged as "the message is not acknowledged",
        // which sent operators looking for a message that never existed.
        await using var server = await PrivatePostgres.StartAsync(durable: false, ct: TestContext.Current.CancellationToken);
        var cs = await CreateDatabaseAsync(server);
        await using var cluster = await PumpCluster.StartAsync(cs);
        var logs = new CapturingLoggerProvider();
        await using var gateway = await GatewayUnderTest.StartAsync(cs, cluster.Grains, logs: logs);
        var hubId = NewId("hub");
        var secret = await gateway.ProvisionAsync(hubId);
        await using var hub = TestHub.Create(hubId);
        Assert.Equal(MqttClientConnectResultCode.Success, (await hub.ConnectAsync(gateway.Port, secret)).ResultCode);
        var store = gateway.Services.GetRequiredService<Hubs.HubStore>();
        await Eventually.TrueAsync(async () => (await store.GetStatusAsync(hubId, TestContext.Current.CancellationToken))?.Online == true,
            TimeSpan.FromSeconds(30), "the hub's connection to be recorded while PostgreSQL is up");

        await server.StopAsync();
        await hub.Client.DisconnectAsync(cancellationToken: TestContext.Current.CancellationToken);

        await Eventually.TrueAsync(() => Task.FromResult(logs.Messages.Any(m => m.Contains($"while recording hub {hubId} offline", StringComparison.Ordinal))),
            TimeSpan.FromSeconds(30), "the failed status write to be logged");
        Assert.DoesNotContain(logs.Messages, m => m.Contains("not acknowledged", StringComparison.Ordinal));
        await server.RestartAsync();
    }

    [Fact]
    public async Task External_PostgresStopped_MessagesHeldUnackedAndStoredAfterRestart()
    {
        await using var server = await PrivatePostgres.StartAsync(durable: false, ct: TestContext.Current.CancellationToken);
        await using var broker = await MosquittoServer.StartAsync();
        var cs = await CreateDatabaseAsync(server);
        await using var cluster = await PumpCluster.StartAsync(cs);
        await using var gateway = await GatewayUnderTest.StartAsync(cs, cluster.Grains, settings: new Dictionary<string, string?>
        {
            ["Gateway:Mqtt:Mode"] = "External",
            ["Gateway:Mqtt:External:Host"] = "127.0.0.1",
            ["Gateway:Mqtt:External:Port"] = broker.Port.ToString(System.Globalization.CultureInfo.InvariantCulture),
            ["Gateway:Mqtt:External:ClientId"] = NewId("gw"),
            ["Gateway:Mqtt:IngestTimeout"] = "00:00:05",
        });
        await gateway.Services.GetRequiredService<Mqtt.ExternalBrokerClient>().WaitConnectedAsync(TestContext.Current.CancellationToken);
        var hubId = NewId("hub");
        var serial = NewId("P");
        await gateway.ProvisionAsync(hubId);
        await gateway.Admin.PairAsync(hubId, serial, AuditActor.System("test"), null, TestContext.Current.CancellationToken);
        await using var hub = TestHub.Create(hubId);
        Assert.Equal(MqttClientConnectResultCode.Success, (await hub.ConnectAsync(broker.Port, "unused")).ResultCode);
        Assert.True((await hub.PublishAsync(serial, Doses(1, 3))).IsSuccess);
        await hub.WaitForAckAsync(serial, 3);

        await server.StopAsync();
        // The broker takes the message (its PUBACK); the gateway cannot store it and holds it unacknowledged.
        Assert.True((await hub.PublishAsync(serial, Batch(false, Dose(4), Dose(5)))).IsSuccess);
        Assert.True((await hub.PublishAsync(serial, Batch(false, Dose(6)))).IsSuccess);
        await Eventually.TrueAsync(() => Task.FromResult(gateway.Services.GetRequiredService<Ingest.GatewayInstruments>().InFlight >= 1),
            TimeSpan.FromSeconds(10), "the gateway to hold the messages in flight");

        await server.RestartAsync();

        await hub.WaitForAckAsync(serial, 6);
        // The first command on a pooled connection from before the restart fails once; poll past it.
        await Eventually.TrueAsync(async () => (await StoredSeqsAsync(gateway, serial)).SequenceEqual([1L, 2L, 3L, 4L, 5L, 6L]),
            TimeSpan.FromSeconds(10), "events 1..6 stored exactly once");
    }

    [Fact]
    public async Task SiloDown_NothingAcked_AfterItReturnsEverythingStored()
    {
        var cs = await pg.CreateDatabaseAsync("gwsilo", typeof(Hosting.GatewayServiceCollectionExtensions).Assembly);
        await using var cluster = await PumpCluster.StartAsync(cs);
        await using var gateway = await GatewayUnderTest.StartAsync(cs, cluster.Grains,
            settings: new Dictionary<string, string?> { ["Gateway:Mqtt:IngestTimeout"] = "00:00:05" });
        var hubId = NewId("hub");
        var serial = NewId("P");
        var secret = await gateway.ProvisionAsync(hubId);
        await gateway.Admin.PairAsync(hubId, serial, AuditActor.System("test"), null, TestContext.Current.CancellationToken);
        await using var hub = TestHub.Create(hubId);
        Assert.Equal(MqttClientConnectResultCode.Success, (await hub.ConnectAsync(gateway.Port, secret)).ResultCode);
        Assert.True((await hub.PublishAsync(serial, Doses(1, 3))).IsSuccess);

        await cluster.KillAllSilosAsync();
        var acked = false;
        try
        {
            acked = (await hub.PublishAsync(serial, Batch(false, Dose(4)))).IsSuccess;
        }
        catch (Exception e) when (e is MQTTnet.Exceptions.MqttCommunicationException or OperationCanceledException or InvalidOperationException)
        {
        }

        Assert.False(acked, "A batch was acknowledged while no silo was running.");

        await cluster.StartSiloAsync();
        await ResendUntilAckedAsync(hub, gateway.Port, secret, serial, Batch(false, Dose(4)));

        Assert.Equal([1L, 2L, 3L, 4L], await StoredSeqsAsync(gateway, serial));
    }

    private static async Task<string> CreateDatabaseAsync(PrivatePostgres server)
    {
        var name = $"gwpg_{Guid.NewGuid():N}"[..20];
        await using (var conn = new NpgsqlConnection(server.ConnectionString()))
        {
            await conn.OpenAsync(TestContext.Current.CancellationToken);
            await using var cmd = new NpgsqlCommand($"CREATE DATABASE \"{name}\"", conn);
            await cmd.ExecuteNonQueryAsync(TestContext.Current.CancellationToken);
        }

        return server.ConnectionString(name);
    }
}
