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
    private string _cs = "";

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    public async ValueTask InitializeAsync()
    {
        var cs = _cs = await pg.CreateDatabaseAsync("gwid", typeof(Hosting.GatewayServiceCollectionExtensions).Assembly);
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

    private string[] CliSettings(bool withPassword = true) =>
        withPassword
            ? [$"--ConnectionStrings:PumpFleet={_cs}", $"--Gateway:Mqtt:External:Password={_gatewayPassword}"]
            : [$"--ConnectionStrings:PumpFleet={_cs}"];

    private int Reloads => _broker.Log.Count(l => l.Contains("Reloading config", StringComparison.Ordinal));

    [Fact]
    public async Task MosquittoFilesCommand_WritesTheFiles_AndAnswersWithExitCodes()
    {
        var (hubId, _, _) = await ProvisionAsync();
        var outDir = Path.Combine(_dir, "cli");
        using var stdout = new StringWriter();
        using var stderr = new StringWriter();

        Assert.Equal(2, await Cli.HubsCli.RunAsync(["mosquitto-files"], CliSettings(), stdout, stderr, Ct));
        Assert.Equal(2, await Cli.HubsCli.RunAsync(["mosquitto-files", "--out", outDir], CliSettings(withPassword: false), stdout, stderr, Ct));
        Assert.Equal(1, await Cli.HubsCli.RunAsync(["mosquitto-files", "--out", outDir, "--gateway-user", hubId], CliSettings(), stdout, stderr, Ct));
        Assert.Equal(0, await Cli.HubsCli.RunAsync(["mosquitto-files", "--out", outDir], CliSettings(), stdout, stderr, Ct));

        var passwd = await File.ReadAllLinesAsync(Path.Combine(outDir, "passwd"), Ct);
        Assert.StartsWith($"{GatewayUser}:$7$", passwd[0], StringComparison.Ordinal);
        var hubLine = Assert.Single(passwd, l => l.StartsWith(hubId + ":", StringComparison.Ordinal));
        Assert.StartsWith("$7$1000$", hubLine[(hubId.Length + 1)..], StringComparison.Ordinal);
        Assert.Contains("pattern write pumpfleet/v1/hubs/%u/pumps/+/events", await File.ReadAllTextAsync(Path.Combine(outDir, "acl"), Ct), StringComparison.Ordinal);
        Assert.Contains($"passwd {Path.Combine(outDir, "passwd")}", stdout.ToString(), StringComparison.Ordinal);
    }

    /// <summary>
    /// End to end as operated: <c>hubs mosquitto-files --watch --reload-pid</c> next to mosquitto; a revocation in the
    /// registry rewrites the files, SIGHUPs the broker, and the broker drops the hub. The time from the revoke call
    /// to the hub seeing its connection closed is reported (docs/benchmarks.md).
    /// </summary>
    [Fact]
    public async Task MosquittoFilesWatch_RevokeAndRotate_TheBrokerDropsTheSession()
    {
        var hubs = new List<(string HubId, string Secret, string Serial)>();
        for (var i = 0; i < 6; i++)
        {
            hubs.Add(await ProvisionAsync());
        }

        using var stop = CancellationTokenSource.CreateLinkedTokenSource(Ct);
        using var stdout = new StringWriter();
        using var stderr = new StringWriter();
        var reloads = Reloads;
        var watch = Task.Run(() => Cli.HubsCli.RunAsync(
            ["mosquitto-files", "--out", _dir, "--watch", "--reload-pid", _broker.ProcessId.ToString(System.Globalization.CultureInfo.InvariantCulture)],
            CliSettings(), TextWriter.Synchronized(stdout), TextWriter.Synchronized(stderr), stop.Token), Ct);
        // Its first write (new hubs, its own hash of the gateway's password) makes it reload the broker.
        await Eventually.TrueAsync(() => Task.FromResult(Reloads > reloads || watch.IsCompleted), TimeSpan.FromSeconds(60), "the watcher's first reload");
        Assert.False(watch.IsCompleted, $"the watcher stopped: {stderr}");

        var times = new List<double>();
        foreach (var (hubId, secret, _) in hubs.Take(5))
        {
            var hub = await ConnectAsync(hubId, secret);
            var disconnected = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            hub.Client.DisconnectedAsync += _ =>
            {
                disconnected.TrySetResult();
                return Task.CompletedTask;
            };
            var sw = System.Diagnostics.Stopwatch.StartNew();
            Assert.Equal(HubAdminStatus.Ok, await _gateway.Admin.RevokeAsync(hubId, AuditActor.System("test"), null, Ct));
            await disconnected.Task.WaitAsync(TimeSpan.FromSeconds(20), Ct);
            times.Add(sw.Elapsed.TotalMilliseconds);
            await ConnectAsync(hubId, secret, MqttClientConnectResultCode.NotAuthorized);
        }

        var rotating = hubs[5];
        var old = await ConnectAsync(rotating.HubId, rotating.Secret);
        var oldClosed = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        old.Client.DisconnectedAsync += _ =>
        {
            oldClosed.TrySetResult();
            return Task.CompletedTask;
        };
        var rotated = await _gateway.Admin.RotateAsync(rotating.HubId, null, AuditActor.System("test"), null, Ct);
        await oldClosed.Task.WaitAsync(TimeSpan.FromSeconds(20), Ct);
        var fresh = await ConnectAsync(rotating.HubId, rotated.Secret!);
        Assert.True((await fresh.PublishAsync(rotating.Serial, Doses(1, 1))).IsSuccess);
        await fresh.WaitForAckAsync(rotating.Serial, 1);

        await stop.CancelAsync();
        Assert.Equal(0, await watch.WaitAsync(TimeSpan.FromSeconds(30), Ct));
        times.Sort();
        TestContext.Current.TestOutputHelper?.WriteLine(
            $"external (mosquitto-files --watch + SIGHUP) revoke -> broker disconnect: median {times[times.Count / 2]:F1} ms, min {times[0]:F1} ms, max {times[^1]:F1} ms, n={times.Count}");
    }
}
