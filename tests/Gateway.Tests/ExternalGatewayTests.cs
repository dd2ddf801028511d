using PumpFleet.EventStore.Audit;
using MQTTnet;
using PumpFleet.Gateway.Mqtt;
using PumpFleet.Gateway.Protocol;
using PumpFleet.Gateway.Tests.Infrastructure;
using PumpFleet.TestSupport;
using Microsoft.Extensions.DependencyInjection;
using static PumpFleet.Gateway.Tests.Infrastructure.Batches;

namespace PumpFleet.Gateway.Tests;

/// <summary>External mode against a real mosquitto 2: shared subscription, persistent session, manual acks.</summary>
public sealed class ExternalGatewayTests(PostgresFixture pg) : IAsyncLifetime
{
    private MosquittoServer _broker = null!;
    private PumpCluster _cluster = null!;
    private string _cs = "";
    private readonly List<GatewayUnderTest> _gateways = [];
    private readonly string _group = $"g{Guid.NewGuid():N}"[..12];

    public async ValueTask InitializeAsync()
    {
        _broker = await MosquittoServer.StartAsync();
        _cs = await pg.CreateDatabaseAsync("gwext", typeof(Hosting.GatewayServiceCollectionExtensions).Assembly);
        _cluster = await PumpCluster.StartAsync(_cs);
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var g in _gateways)
        {
            await g.DisposeAsync();
        }

        await _cluster.DisposeAsync();
        await _broker.DisposeAsync();
    }

    private async Task<GatewayUnderTest> StartGatewayAsync(string instance, IGrainFactory? grains = null)
    {
        var gw = await GatewayUnderTest.StartAsync(_cs, grains ?? _cluster.Grains, settings: new Dictionary<string, string?>
        {
            ["Gateway:Mqtt:Mode"] = "External",
            ["Gateway:Mqtt:External:Host"] = "127.0.0.1",
            ["Gateway:Mqtt:External:Port"] = _broker.Port.ToString(System.Globalization.CultureInfo.InvariantCulture),
            ["Gateway:Mqtt:External:SharedGroup"] = _group,
            ["Gateway:Mqtt:External:ClientId"] = $"{_group}-{instance}",
            ["Gateway:Mqtt:MaxInFlight"] = "16",
        });
        _gateways.Add(gw);
        await gw.Services.GetRequiredService<ExternalBrokerClient>().WaitConnectedAsync(TestContext.Current.CancellationToken);
        return gw;
    }

    private static string NewId(string prefix) => $"{prefix}-{Guid.NewGuid():N}"[..20];

    private async Task<(TestHub Hub, string Serial)> PairedHubAsync(GatewayUnderTest gw)
    {
        var hubId = NewId("hub");
        var serial = NewId("P");
        await gw.Admin.ProvisionAsync(hubId, null, AuditActor.System("test"), null, TestContext.Current.CancellationToken);
        await gw.Admin.PairAsync(hubId, serial, AuditActor.System("test"), null, TestContext.Current.CancellationToken);
        var hub = TestHub.Create(hubId);
        // mosquitto authenticates hubs in production; here it allows anonymous clients.
        Assert.Equal(MqttClientConnectResultCode.Success, (await hub.ConnectAsync(_broker.Port, "unused")).ResultCode);
        return (hub, serial);
    }

    private async Task<List<long>> StoredSeqsAsync(GatewayUnderTest gw, string serial) =>
        [.. (await EmbeddedEnvironment.DeviceEventsAsync(gw.Services, serial)).Select(e => e.Seq!.Value)];

    [Fact]
    public async Task Publish_ValidBatch_StoredAndAcked()
    {
        var gw = await StartGatewayAsync("a");
        var (hub, serial) = await PairedHubAsync(gw);
        await using var _ = hub;

        Assert.True((await hub.PublishAsync(serial, Doses(1, 4))).IsSuccess);

        var ack = await hub.WaitForAckAsync(serial, 4);
        Assert.Equal(4, ack.Json.GetProperty("committedSeq").GetInt64());
        Assert.Equal([1L, 2L, 3L, 4L], await StoredSeqsAsync(gw, serial));
    }

    [Fact]
    public async Task Publish_InvalidEventAndUnpairedPump_AreRejectedAndQuarantined()
    {
        var gw = await StartGatewayAsync("a");
        var (hub, serial) = await PairedHubAsync(gw);
        await using var _ = hub;

        await hub.PublishAsync(serial, Batch(Dose(1), Dose(2, volume: -1)));
        await hub.WaitForRejectAsync(serial, RejectCodes.NegativeVolume);
        await hub.WaitForAckAsync(serial, 1);
        var unpaired = NewId("P");
        await hub.PublishAsync(unpaired, Doses(1, 1));
        await hub.WaitForRejectAsync(unpaired, RejectCodes.PumpNotPaired);

        var rows = await gw.Quarantine.QueryAsync(hub.HubId, null, 10, null, TestContext.Current.CancellationToken);
        Assert.Contains(rows, r => r.Code == RejectCodes.NegativeVolume && r.Seq == 2);
        Assert.Contains(rows, r => r.Code == RejectCodes.PumpNotPaired && r.Serial == unpaired && r.Refused);
        Assert.Equal([1L], await StoredSeqsAsync(gw, serial));
    }

    [Fact]
    public async Task UnexpectedFailure_IsRetriedInPlace_ThenQuarantinedAsPoisonAndAcknowledged()
    {
        var gw = await StartGatewayAsync("a", PoisonGrainFactory.Wrap(_cluster.Grains));
        var hubId = NewId("hub");
        var poisoned = PoisonGrainFactory.Prefix + NewId("-");
        var healthy = NewId("P");
        await gw.Admin.ProvisionAsync(hubId, null, AuditActor.System("test"), null, TestContext.Current.CancellationToken);
        await gw.Admin.PairAsync(hubId, poisoned, AuditActor.System("test"), null, TestContext.Current.CancellationToken);
        await gw.Admin.PairAsync(hubId, healthy, AuditActor.System("test"), null, TestContext.Current.CancellationToken);
        await using var hub = TestHub.Create(hubId);
        Assert.Equal(MqttClientConnectResultCode.Success, (await hub.ConnectAsync(_broker.Port, "unused")).ResultCode);

        await hub.PublishAsync(poisoned, Doses(1, 2));

        // Retried in place (not left unacknowledged until a reconnect), then answered as poison.
        await hub.WaitForRejectAsync(poisoned, RejectCodes.PoisonMessage);
        var rows = await gw.Quarantine.QueryAsync(hubId, poisoned, 10, null, TestContext.Current.CancellationToken);
        Assert.Contains(rows, r => r.Code == RejectCodes.PoisonMessage);
        await hub.PublishAsync(healthy, Doses(1, 2));
        await hub.WaitForAckAsync(healthy, 2);
    }

    [Fact]
    public async Task PoisonMessage_IsAcknowledgedToTheBroker_NotRedeliveredWhenTheGatewayComesBack()
    {
        var first = await StartGatewayAsync("p", PoisonGrainFactory.Wrap(_cluster.Grains));
        var hubId = NewId("hub");
        var poisoned = PoisonGrainFactory.Prefix + NewId("-");
        await first.Admin.ProvisionAsync(hubId, null, AuditActor.System("test"), null, TestContext.Current.CancellationToken);
        await first.Admin.PairAsync(hubId, poisoned, AuditActor.System("test"), null, TestContext.Current.CancellationToken);
        await using var hub = TestHub.Create(hubId);
        Assert.Equal(MqttClientConnectResultCode.Success, (await hub.ConnectAsync(_broker.Port, "unused")).ResultCode);
        await hub.PublishAsync(poisoned, Doses(1, 2));
        await hub.WaitForRejectAsync(poisoned, RejectCodes.PoisonMessage);
        // The reject reaches the hub before the worker acknowledges the message to the broker; a message leaves the
        // in-flight count only after that acknowledgement, so stopping earlier would test a crash, not the ack.
        var instruments = first.Services.GetRequiredService<Ingest.GatewayInstruments>();
        await Eventually.TrueAsync(() => Task.FromResult(instruments.InFlight == 0), TimeSpan.FromSeconds(10),
            "the first instance acknowledged the poison message to the broker");

        // Same client id, persistent session: whatever the first instance left unacknowledged, the broker delivers
        // again, ahead of the next message of the same pump (same worker, in order).
        await first.StopAsync();
        var second = await StartGatewayAsync("p", PoisonGrainFactory.Wrap(_cluster.Grains));
        var next = Batch(false, Dose(3));
        await hub.PublishAsync(poisoned, next);
        IReadOnlyList<Quarantine.QuarantineEntry> rows = [];
        await Eventually.TrueAsync(async () =>
        {
            rows = await second.Quarantine.QueryAsync(hubId, poisoned, 10, null, TestContext.Current.CancellationToken);
            return rows.Any(r => r.Code == RejectCodes.PoisonMessage && System.Text.Encoding.UTF8.GetString(r.Payload) == next);
        }, TimeSpan.FromSeconds(30), "the new message quarantined as poison");

        // The first message once, the new one once: a redelivered first message would have been handled before the new one.
        Assert.Equal(2, rows.Count(r => r.Code == RejectCodes.PoisonMessage));
    }

    [Fact]
    public async Task TwoGateways_ShareTheSubscription_EveryEventStoredExactlyOnce()
    {
        var a = await StartGatewayAsync("a");
        await StartGatewayAsync("b");
        var pumps = new List<(TestHub Hub, string Serial)>();
        for (var i = 0; i < 4; i++)
        {
            pumps.Add(await PairedHubAsync(a));
        }

        try
        {
            // Each pump sends consecutive batches without waiting for acks. The broker spreads them over both
            // instances, so a later batch may overtake an earlier one (even the first, which carries the device):
            // the grain fills gaps with late events and the gateway retries a device-required refusal for a while.
            await Task.WhenAll(pumps.Select(async p =>
            {
                for (var b = 0; b < 10; b++)
                {
                    Assert.True((await p.Hub.PublishAsync(p.Serial, b == 0 ? Doses(1, 5) : Batch(false, [.. Enumerable.Range(b * 5 + 1, 5).Select(s => Dose(s))]))).IsSuccess);
                }
            }));

            foreach (var (hub, serial) in pumps)
            {
                await hub.WaitForAckAsync(serial, 50);
                await Eventually.TrueAsync(async () => (await StoredSeqsAsync(a, serial)).Count == 50, TimeSpan.FromSeconds(30), $"50 events of {serial}");
                Assert.Equal(Enumerable.Range(1, 50).Select(s => (long)s), (await StoredSeqsAsync(a, serial)).Order());
            }
        }
        finally
        {
            foreach (var p in pumps)
            {
                await p.Hub.DisposeAsync();
            }
        }
    }
}
