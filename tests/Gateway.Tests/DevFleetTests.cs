using MQTTnet;
using PumpFleet.Gateway.Hubs;
using PumpFleet.Gateway.Protocol;
using PumpFleet.Gateway.Tests.Infrastructure;
using PumpFleet.TestSupport;
using static PumpFleet.Gateway.Tests.Infrastructure.Batches;

namespace PumpFleet.Gateway.Tests;

/// <summary>The dev/demo fleet shortcuts: derived hub passwords and pairing on first batch.</summary>
public sealed class DevFleetTests(PostgresFixture pg, EmbeddedEnvironment env) : IClassFixture<EmbeddedEnvironment>, IAsyncLifetime
{
    private const string FleetSecret = "dev-fleet-secret-for-tests";

    public async ValueTask InitializeAsync() => await env.EnsureStartedAsync(pg, new Dictionary<string, string?>
    {
        ["Gateway:Hubs:DevFleetSecret"] = FleetSecret,
        ["Gateway:Hubs:AutoPairOnFirstBatch"] = "true",
    });

    public ValueTask DisposeAsync() => ValueTask.CompletedTask;

    [Fact]
    public async Task UnknownHub_WithDerivedPassword_IsProvisionedAndItsFirstPumpPaired()
    {
        var hubId = $"sim-{Guid.NewGuid():N}"[..16];
        var serial = $"P-{Guid.NewGuid():N}"[..16];
        // What the simulator computes: lowercase hex HMAC-SHA256(key = fleet secret, message = hub id).
        var password = Convert.ToHexStringLower(System.Security.Cryptography.HMACSHA256.HashData(
            System.Text.Encoding.UTF8.GetBytes(FleetSecret), System.Text.Encoding.UTF8.GetBytes(hubId)));
        await using var hub = TestHub.Create(hubId);

        Assert.Equal(MqttClientConnectResultCode.Success, (await hub.ConnectAsync(env.Gateway.Port, password)).ResultCode);
        Assert.True((await hub.PublishAsync(serial, Doses(1, 2))).IsSuccess);
        await hub.WaitForAckAsync(serial, 2);

        var store = (HubStore)env.Gateway.Services.GetService(typeof(HubStore))!;
        Assert.NotNull(await store.FindAsync(hubId, TestContext.Current.CancellationToken));

        // A second hub cannot claim the now-paired pump.
        var other = $"sim-{Guid.NewGuid():N}"[..16];
        await using var intruder = TestHub.Create(other);
        await intruder.ConnectAsync(env.Gateway.Port, SecretHasher.DevFleetPassword(FleetSecret, other));
        Assert.Equal(MqttClientPublishReasonCode.NotAuthorized, (await intruder.PublishAsync(serial, Doses(3, 3))).ReasonCode);
        await intruder.WaitForRejectAsync(serial, RejectCodes.PumpNotPaired);
    }

    [Fact]
    public async Task UnknownHub_WithWrongPassword_IsRefused()
    {
        var hubId = $"sim-{Guid.NewGuid():N}"[..16];
        await using var hub = TestHub.Create(hubId);

        var r = await hub.ConnectAsync(env.Gateway.Port, SecretHasher.DevFleetPassword("another-fleet-secret!!", hubId));

        Assert.Equal(MqttClientConnectResultCode.BadUserNameOrPassword, r.ResultCode);
    }
}
