using MQTTnet;
using PumpFleet.EventStore.Audit;
using PumpFleet.Gateway.Tests.Infrastructure;
using PumpFleet.TestSupport;
using static PumpFleet.Gateway.Tests.Infrastructure.Batches;

namespace PumpFleet.Gateway.Tests;

/// <summary>
/// A grain call whose answer is lost (its silo killed after storing) is made again after GrainCallAttemptTimeout
/// instead of holding the hub until IngestTimeout: the hub gets its PUBACK and ack, and the batch is stored once.
/// </summary>
public sealed class LostGrainCallTests(PostgresFixture pg, EmbeddedEnvironment env) : IClassFixture<EmbeddedEnvironment>, IAsyncLifetime
{
    public async ValueTask InitializeAsync() => await env.EnsureStartedAsync(pg);

    public ValueTask DisposeAsync() => ValueTask.CompletedTask;

    [Fact]
    public async Task CallWhoseAnswerIsLost_IsMadeAgain_AndTheHubIsAcknowledged_WithEveryEventStoredOnce()
    {
        var (grains, probe) = LostAnswerGrainFactory.Wrap(env.Cluster.Grains);
        await using var gw = await GatewayUnderTest.StartAsync(env.ConnectionString, grains, settings: new Dictionary<string, string?>
        {
            ["Gateway:Mqtt:GrainCallAttemptTimeout"] = "00:00:01",
            ["Gateway:Mqtt:IngestTimeout"] = "00:00:30",
        });
        var hubId = $"hub-{Guid.NewGuid():N}"[..20];
        var serial = LostAnswerGrainFactory.Prefix + $"-{Guid.NewGuid():N}"[..16];
        var secret = await gw.ProvisionAsync(hubId);
        await gw.Admin.PairAsync(hubId, serial, AuditActor.System("test"), null, TestContext.Current.CancellationToken);
        await using var hub = TestHub.Create(hubId);
        Assert.Equal(MqttClientConnectResultCode.Success, (await hub.ConnectAsync(gw.Port, secret)).ResultCode);

        // One publish, no reconnect: the PUBACK comes from the second attempt, long before IngestTimeout.
        var sw = System.Diagnostics.Stopwatch.StartNew();
        var puback = await hub.PublishAsync(serial, Doses(1, 20));
        sw.Stop();
        Assert.True(puback.IsSuccess, $"PUBACK {puback.ReasonCode}");
        Assert.True(hub.Client.IsConnected, "the hub was not disconnected");
        Assert.Equal(2, probe.CallsOf(serial));
        Assert.True(sw.Elapsed < TimeSpan.FromSeconds(25), $"acknowledged after {sw.Elapsed}, not after IngestTimeout");
        await hub.WaitForAckAsync(serial, 20);

        var seqs = (await EmbeddedEnvironment.DeviceEventsAsync(gw.Services, serial)).Select(e => e.Seq!.Value).ToList();
        Assert.Equal(Enumerable.Range(1, 20).Select(i => (long)i), seqs);
    }
}
