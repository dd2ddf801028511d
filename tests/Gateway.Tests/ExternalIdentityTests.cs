using Microsoft.Extensions.DependencyInjection;
using MQTTnet;
using MQTTnet.Protocol;
using Npgsql;
using PumpFleet.Contracts.Hub;
using PumpFleet.EventStore.Audit;
using PumpFleet.Gateway.Hubs;
using PumpFleet.Gateway.Mqtt;
using PumpFleet.Gateway.Protocol;
using PumpFleet.Gateway.Tests.Infrastructure;
using PumpFleet.TestSupport;
using static PumpFleet.Gateway.Tests.Infrastructure.Batches;

namespace PumpFleet.Gateway.Tests;

/// <summary>
/// External mode against a private mosquitto 2 with anonymous access off, whose password file and ACL are the ones
/// <c>hubs mosquitto-files</c> writes from the registry: the broker authenticates every hub, and the ACL makes the
/// topic's hub id the authenticated user.
/// </summary>
public sealed class ExternalIdentityTests(PostgresFixture pg) : IAsyncLifetime
{
    private const string GatewayUser = MosquittoFiles.DefaultGatewayUser;
    private readonly string _gatewayPassword = $"gw-{Guid.NewGuid():N}";
    private readonly string _dir = Directory.CreateTempSubdirectory("pumpfleet-mosquitto-files-").FullName;
    private readonly List<TestHub> _hubs = [];
    private MosquittoServer _broker = null!;
    private PumpCluster _cluster = null!;
    private NpgsqlDataSource _dataSource = null!;
    private GatewayUnderTest _gateway = null!;
    private string _gatewayHash = "";

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    public async ValueTask InitializeAsync()
    {
        var cs = await pg.CreateDatabaseAsync("gwid", typeof(Hosting.GatewayServiceCollectionExtensions).Assembly);
        _dataSource = NpgsqlDataSource.Create(cs);
        _cluster = await PumpCluster.StartAsync(cs);
        _gatewayHash = BrokerSecretHasher.Hash(_gatewayPassword, 1000);
        await WriteFilesAsync(); // the gateway's user only: no hub is provisioned yet
        _broker = await MosquittoServer.StartAsync(Path.Combine(_dir, "passwd"), Path.Combine(_dir, "acl"));
        var group = $"g{Guid.NewGuid():N}"[..12];
        _gateway = await GatewayUnderTest.StartAsync(cs, _cluster.Grains, settings: new Dictionary<string, string?>
        {
            ["Gateway:Mqtt:Mode"] = "External",
            ["Gateway:Mqtt:External:Host"] = "127.0.0.1",
            ["Gateway:Mqtt:External:Port"] = _broker.Port.ToString(System.Globalization.CultureInfo.InvariantCulture),
            ["Gateway:Mqtt:External:SharedGroup"] = group,
            ["Gateway:Mqtt:External:ClientId"] = $"{group}-gateway-0",
            ["Gateway:Mqtt:External:Username"] = GatewayUser,
            ["Gateway:Mqtt:External:Password"] = _gatewayPassword,
        });
        await _gateway.Services.GetRequiredService<ExternalBrokerClient>().WaitConnectedAsync(Ct);
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var h in _hubs)
        {
            await h.DisposeAsync();
        }

        await _gateway.DisposeAsync();
        await _cluster.DisposeAsync();
        await _broker.DisposeAsync();
        await _dataSource.DisposeAsync();
        Directory.Delete(_dir, recursive: true);
    }

    private Task<MosquittoFilesResult> WriteFilesAsync() =>
        MosquittoFiles.WriteAsync(new HubStore(_dataSource), _dir, GatewayUser, _gatewayHash, Ct);

    /// <summary>What an operator does after a registry change: regenerate the files, then SIGHUP mosquitto.</summary>
    private async Task RegenerateAndReloadAsync()
    {
        await WriteFilesAsync();
        var reloads = _broker.Log.Count(l => l.Contains("Reloading config", StringComparison.Ordinal));
        await _broker.ReloadAsync();
        // mosquitto logs this in the main loop iteration that re-reads the files; whatever it handles next sees them.
        await Eventually.TrueAsync(() => Task.FromResult(_broker.Log.Count(l => l.Contains("Reloading config", StringComparison.Ordinal)) > reloads),
            TimeSpan.FromSeconds(10), "mosquitto reloaded its configuration");
    }

    private static string NewId(string prefix) => $"{prefix}-{Guid.NewGuid():N}"[..20];

    private async Task<(string HubId, string Secret, string Serial)> ProvisionAsync()
    {
        var hubId = NewId("hub");
        var serial = NewId("P");
        var r = await _gateway.Admin.ProvisionAsync(hubId, null, AuditActor.System("test"), null, Ct);
        Assert.Equal(HubAdminStatus.Ok, r.Status);
        Assert.Equal(HubAdminStatus.Ok, await _gateway.Admin.PairAsync(hubId, serial, AuditActor.System("test"), null, Ct));
        return (hubId, r.Secret!, serial);
    }

    private async Task<TestHub> ConnectAsync(string hubId, string secret, MqttClientConnectResultCode expected = MqttClientConnectResultCode.Success)
    {
        var hub = TestHub.Create(hubId);
        _hubs.Add(hub);
        var r = await hub.ConnectAsync(_broker.Port, secret);
        Assert.True(expected == r.ResultCode, $"CONNACK {r.ResultCode}, expected {expected}. Broker log: {string.Join(" | ", _broker.Log.TakeLast(5))}");
        return hub;
    }

    private async Task<List<long>> StoredSeqsAsync(string serial) =>
        [.. (await EmbeddedEnvironment.DeviceEventsAsync(_gateway.Services, serial)).Select(e => e.Seq!.Value)];

    [Fact]
    public async Task GeneratedFiles_LetAProvisionedHubPublish_AndTheGatewayStoresAndAcks()
    {
        var (hubId, secret, serial) = await ProvisionAsync();
        await RegenerateAndReloadAsync();
        var hub = await ConnectAsync(hubId, secret);

        Assert.True((await hub.PublishAsync(serial, Doses(1, 3))).IsSuccess);

        await hub.WaitForAckAsync(serial, 3);
        Assert.Equal([1L, 2L, 3L], await StoredSeqsAsync(serial));
    }

    [Fact]
    public async Task WrongPassword_UnknownHub_AndNoCredentials_AreRefusedByTheBroker()
    {
        var (hubId, _, _) = await ProvisionAsync();
        await RegenerateAndReloadAsync();

        await ConnectAsync(hubId, "not-the-secret-0123456789", MqttClientConnectResultCode.NotAuthorized);
        await ConnectAsync(NewId("hub"), "whatever-0123456789", MqttClientConnectResultCode.NotAuthorized);
        // A hub posing as the gateway's user does not know its password either.
        var gw = TestHub.Create(GatewayUser + "-x");
        _hubs.Add(gw);
        var r = await gw.ConnectAsync(_broker.Port, "guess-0123456789", username: GatewayUser, subscribe: false);
        Assert.Equal(MqttClientConnectResultCode.NotAuthorized, r.ResultCode);
    }

    [Fact]
    public async Task HubOnAnotherHubsTopic_IsRefusedByTheBroker_AndNothingIsStoredForTheVictim()
    {
        var victim = await ProvisionAsync();
        var mallory = await ProvisionAsync();
        await RegenerateAndReloadAsync();
        var victimHub = await ConnectAsync(victim.HubId, victim.Secret);
        var malloryHub = await ConnectAsync(mallory.HubId, mallory.Secret);

        // Mallory writes under the victim's hub id, for the victim's paired pump.
        var forged = await malloryHub.PublishRawAsync(HubTopics.Events(victim.HubId, victim.Serial), System.Text.Encoding.UTF8.GetBytes(Doses(1, 3)));
        Assert.Equal(MqttClientPublishReasonCode.NotAuthorized, forged.ReasonCode);

        // The victim's own batch is the first thing stored for its pump: the forged one never reached the gateway
        // (it would have been stored as seqs 1-3 of the same pump, ahead of this one on the same worker).
        Assert.True((await victimHub.PublishAsync(victim.Serial, Doses(1, 2))).IsSuccess);
        await victimHub.WaitForAckAsync(victim.Serial, 2);
        Assert.Equal([1L, 2L], await StoredSeqsAsync(victim.Serial));
        Assert.Empty(await _gateway.Quarantine.QueryAsync(mallory.HubId, null, 10, null, Ct));

        // Nor may Mallory read the victim's acks: mosquitto 2.0 grants the subscription but delivers nothing the ACL
        // does not allow. The victim's next ack is handed to every subscriber when mosquitto receives it, so it would
        // be on Mallory's socket before Mallory's own ack, which comes later.
        await malloryHub.Client.SubscribeAsync(new MqttClientSubscribeOptionsBuilder()
            .WithTopicFilter(f => f.WithTopic(HubTopics.Ack(victim.HubId, victim.Serial)).WithQualityOfServiceLevel(MqttQualityOfServiceLevel.AtLeastOnce))
            .WithTopicFilter(f => f.WithTopic($"{HubTopics.Prefix}{victim.HubId}/#").WithQualityOfServiceLevel(MqttQualityOfServiceLevel.AtLeastOnce))
            .Build(), Ct);
        Assert.True((await victimHub.PublishAsync(victim.Serial, Batch(false, Dose(3)))).IsSuccess);
        await victimHub.WaitForAckAsync(victim.Serial, 3);
        Assert.True((await malloryHub.PublishAsync(mallory.Serial, Doses(1, 1))).IsSuccess);
        await malloryHub.WaitForAckAsync(mallory.Serial, 1);
        Assert.DoesNotContain(malloryHub.ReceivedSoFar(), m => m.Topic.Contains(victim.HubId, StringComparison.Ordinal));
    }

    [Fact]
    public async Task RevokedHub_IsRefusedByTheGatewayAtOnce_AndTheBrokerEndsItsSessionOnReload()
    {
        var (hubId, secret, serial) = await ProvisionAsync();
        await RegenerateAndReloadAsync();
        var hub = await ConnectAsync(hubId, secret);
        Assert.True((await hub.PublishAsync(serial, Doses(1, 2))).IsSuccess);
        await hub.WaitForAckAsync(serial, 2);

        Assert.Equal(HubAdminStatus.Ok, await _gateway.Admin.RevokeAsync(hubId, AuditActor.System("test"), null, Ct));
        var registry = _gateway.Services.GetRequiredService<HubRegistryWatcher>();
        await Eventually.TrueAsync(() => Task.FromResult(registry.IsRevoked(hubId)), TimeSpan.FromSeconds(10), "the gateway knows of the revocation");

        // The broker's files still let the hub in; the gateway refuses its message, quarantines and acknowledges it.
        Assert.True((await hub.PublishAsync(serial, Batch(false, Dose(3)))).IsSuccess);
        await Eventually.TrueAsync(async () => (await _gateway.Quarantine.QueryAsync(hubId, serial, 10, null, Ct)).Any(r => r.Code == RejectCodes.HubRevoked),
            TimeSpan.FromSeconds(15), "a hub-revoked quarantine row");
        Assert.Equal([1L, 2L], await StoredSeqsAsync(serial));

        // Regenerated without the hub and reloaded: mosquitto 2 re-checks the credentials of connected clients on
        // reload and disconnects those no longer valid; the hub cannot come back.
        var disconnected = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        hub.Client.DisconnectedAsync += _ =>
        {
            disconnected.TrySetResult();
            return Task.CompletedTask;
        };
        await RegenerateAndReloadAsync();
        await disconnected.Task.WaitAsync(TimeSpan.FromSeconds(10), Ct);
        await ConnectAsync(hubId, secret, MqttClientConnectResultCode.NotAuthorized);
    }

    [Fact]
    public async Task RotatedSecret_AfterReload_EndsTheSessionOfTheOldSecret_AndOnlyTheNewOneConnects()
    {
        var (hubId, oldSecret, serial) = await ProvisionAsync();
        await RegenerateAndReloadAsync();
        var hub = await ConnectAsync(hubId, oldSecret);
        var disconnected = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        hub.Client.DisconnectedAsync += _ =>
        {
            disconnected.TrySetResult();
            return Task.CompletedTask;
        };

        var rotated = await _gateway.Admin.RotateAsync(hubId, null, AuditActor.System("test"), null, Ct);
        Assert.Equal(HubAdminStatus.Ok, rotated.Status);
        await RegenerateAndReloadAsync();

        await disconnected.Task.WaitAsync(TimeSpan.FromSeconds(10), Ct);
        await ConnectAsync(hubId, oldSecret, MqttClientConnectResultCode.NotAuthorized);
        var fresh = await ConnectAsync(hubId, rotated.Secret!);
        Assert.True((await fresh.PublishAsync(serial, Doses(1, 1))).IsSuccess);
        await fresh.WaitForAckAsync(serial, 1);
    }
}
