using PumpFleet.EventStore.Audit;
using System.Text;
using MQTTnet;
using PumpFleet.Gateway.Protocol;
using PumpFleet.Gateway.Tests.Infrastructure;
using PumpFleet.TestSupport;
using static PumpFleet.Gateway.Tests.Infrastructure.Batches;

namespace PumpFleet.Gateway.Tests;

public sealed class EmbeddedGatewayTests(PostgresFixture pg, EmbeddedEnvironment env) : IClassFixture<EmbeddedEnvironment>, IAsyncLifetime
{
    private GatewayUnderTest Gateway => env.Gateway;

    public async ValueTask InitializeAsync() => await env.EnsureStartedAsync(pg);

    public ValueTask DisposeAsync() => ValueTask.CompletedTask;

    private static string NewId(string prefix) => $"{prefix}-{Guid.NewGuid():N}"[..20];

    /// <summary>A provisioned, connected hub with one paired pump.</summary>
    private async Task<(TestHub Hub, string Serial)> PairedHubAsync()
    {
        var hubId = NewId("hub");
        var serial = NewId("P");
        var secret = await Gateway.ProvisionAsync(hubId);
        Assert.Equal(Hubs.HubAdminStatus.Ok, await Gateway.Admin.PairAsync(hubId, serial, AuditActor.System("test"), null, TestContext.Current.CancellationToken));
        var hub = TestHub.Create(hubId);
        var connect = await hub.ConnectAsync(Gateway.Port, secret);
        Assert.Equal(MqttClientConnectResultCode.Success, connect.ResultCode);
        return (hub, serial);
    }

    private async Task<List<long>> StoredSeqsAsync(string serial) =>
        [.. (await EmbeddedEnvironment.DeviceEventsAsync(Gateway.Services, serial)).Select(e => e.Seq!.Value)];

    private async Task AssertQuarantinedAsync(string hubId, string? serial, string code, long? seq = null)
    {
        var rows = await Gateway.Quarantine.QueryAsync(hubId, null, 100, null, TestContext.Current.CancellationToken);
        Assert.Contains(rows, r => r.Code == code && r.Serial == serial && r.Seq == seq);
    }

    [Fact]
    public async Task Publish_ValidBatch_StoresEventsThenAcksWithCommittedSeq()
    {
        var (hub, serial) = await PairedHubAsync();
        await using var _ = hub;

        var result = await hub.PublishAsync(serial, Doses(1, 3));

        Assert.True(result.IsSuccess, $"PUBACK {result.ReasonCode}");
        // The PUBACK came after durable storage: the events are in PostgreSQL now, without polling.
        Assert.Equal([1L, 2L, 3L], await StoredSeqsAsync(serial));
        var ack = await hub.WaitForAckAsync(serial, 3);
        Assert.Equal(serial, ack.Json.GetProperty("serial").GetString());
        Assert.Equal(3, ack.Json.GetProperty("committedSeq").GetInt64());
        Assert.True(ack.Json.TryGetProperty("at", out var at) && at.TryGetDateTimeOffset(out var _at));
    }

    [Fact]
    public async Task Publish_BatchResentAfterLostAck_IsStoredOnce()
    {
        var (hub, serial) = await PairedHubAsync();
        await using var _ = hub;

        Assert.True((await hub.PublishAsync(serial, Doses(1, 5))).IsSuccess);
        // The hub "lost" the ack and resends an overlapping batch.
        Assert.True((await hub.PublishAsync(serial, Doses(1, 5))).IsSuccess);
        Assert.True((await hub.PublishAsync(serial, Batch(false, Dose(4), Dose(5), Dose(6)))).IsSuccess);

        Assert.Equal([1L, 2L, 3L, 4L, 5L, 6L], await StoredSeqsAsync(serial));
        await hub.WaitForAckAsync(serial, 6);
    }

    public static TheoryData<string, string, string, bool> InvalidMessages() => new()
    {
        // name, payload, code, whole message (seq null)
        { "not json", "{\"v\":1, events: nope", RejectCodes.InvalidJson, true },
        { "json array", "[1,2]", RejectCodes.InvalidJson, true },
        { "wrong v", """{"v":2,"events":[]}""", RejectCodes.UnsupportedVersion, true },
        { "missing v", """{"events":[]}""", RejectCodes.UnsupportedVersion, true },
        { "no events", """{"v":1}""", RejectCodes.MissingEvents, true },
        { "events not array", """{"v":1,"events":{}}""", RejectCodes.MissingEvents, true },
        { "empty events", """{"v":1,"events":[]}""", RejectCodes.EmptyEvents, true },
        { "too many events", Batch([.. Enumerable.Range(1, 501).Select(i => Dose(i))]), RejectCodes.TooManyEvents, true },
        { "oversized", Batch(Dose(1)).Replace("\"v\":1,", "\"v\":1,\"pad\":\"" + new string('x', 262_144) + "\",", StringComparison.Ordinal), RejectCodes.PayloadTooLarge, true },
        { "bad device", """{"v":1,"device":{"model":"SM2-40"},"events":[{"seq":1,"type":"status","at":"2026-11-01T00:00:00Z"}]}""", RejectCodes.InvalidDevice, true },
        { "unknown type", Batch(Dose(1), """{"seq":2,"type":"teleport","at":"2026-11-01T02:00:00Z"}"""), RejectCodes.UnknownType, false },
        { "missing field", Batch(Dose(1), """{"seq":2,"type":"dose.delivered","at":"2026-11-01T02:00:00Z","from":"2026-11-01T01:00:00Z","kind":"basal"}"""), RejectCodes.MissingField, false },
        { "mistyped field", Batch(Dose(1), """{"seq":2,"type":"dose.delivered","at":"2026-11-01T02:00:00Z","from":"2026-11-01T01:00:00Z","volumeMl":"0.02","kind":"basal"}"""), RejectCodes.InvalidField, false },
        { "negative volume", Batch(Dose(1), Dose(2, volume: -0.5)), RejectCodes.NegativeVolume, false },
        { "seq not increasing", Batch(Dose(1), Dose(3), Dose(2)), RejectCodes.SeqNotIncreasing, false },
        { "bad timestamp", Batch(Dose(1), """{"seq":2,"type":"status","at":"yesterday"}"""), RejectCodes.InvalidTimestamp, false },
        { "outside vocabulary", Batch(Dose(1), """{"seq":2,"type":"alarm.raised","at":"2026-11-01T02:00:00Z","code":"ON_FIRE","severity":"critical"}"""), RejectCodes.InvalidValue, false },
        { "out of range", Batch(Dose(1), """{"seq":2,"type":"pain.reported","at":"2026-11-01T02:00:00Z","score":11}"""), RejectCodes.InvalidValue, false },
    };

    [Theory]
    [MemberData(nameof(InvalidMessages))]
    public async Task Publish_InvalidInput_IsRejectedQuarantinedAndTheNextValidMessageIsServed(string name, string payload, string code, bool wholeMessage)
    {
        var (hub, serial) = await PairedHubAsync();
        await using var _ = hub;

        var result = await hub.PublishAsync(serial, payload);

        Assert.True(result.ReasonCode is MqttClientPublishReasonCode.Success or MqttClientPublishReasonCode.PayloadFormatInvalid, $"{name}: {result.ReasonCode}");
        var reject = await hub.WaitForRejectAsync(serial, code);
        var reason = reject.Json.GetProperty("reason").GetString();
        Assert.False(string.IsNullOrWhiteSpace(reason));
        long? seq = wholeMessage ? null : 2;
        if (wholeMessage)
        {
            Assert.Equal(System.Text.Json.JsonValueKind.Null, reject.Json.GetProperty("seq").ValueKind);
            Assert.Empty(await StoredSeqsAsync(serial));
        }
        else
        {
            Assert.Equal(2, reject.Json.GetProperty("seq").GetInt64());
            // The valid events of the batch were stored.
            Assert.Contains(1L, await StoredSeqsAsync(serial));
            Assert.DoesNotContain(2L, await StoredSeqsAsync(serial));
        }

        await AssertQuarantinedAsync(hub.HubId, serial, code, seq);

        Assert.True((await hub.PublishAsync(serial, Batch(Dose(10)))).IsSuccess);
        // Stored; the watermark stays below the seqs never sent (1..9 for a whole-message reject, 3..9 otherwise).
        var ack = await hub.WaitForStoredAsync(serial, 10);
        // A seq that is not increasing is not accounted for: the hub must send it again.
        Assert.Equal(wholeMessage ? 0 : code == RejectCodes.SeqNotIncreasing ? 1 : 2, ack.Json.GetProperty("committedSeq").GetInt64());
    }

    [Fact]
    public async Task Publish_FarFutureTimestamp_IsStoredClockSuspect()
    {
        var (hub, serial) = await PairedHubAsync();
        await using var _ = hub;

        var future = DateTimeOffset.UtcNow.AddDays(3);
        Assert.True((await hub.PublishAsync(serial, Batch(Dose(1), Dose(2, at: future)))).IsSuccess);

        var stored = await EmbeddedEnvironment.DeviceEventsAsync(Gateway.Services, serial);
        Assert.Equal([1L, 2L], stored.Select(e => e.Seq!.Value));
        Assert.True(stored.Single(e => e.Seq == 2).ClockSuspect);
        await hub.WaitForAckAsync(serial, 2);
    }

    [Fact]
    public async Task Connect_WrongPassword_IsRefusedAndQuarantined()
    {
        var hubId = NewId("hub");
        await Gateway.ProvisionAsync(hubId);
        await using var hub = TestHub.Create(hubId);

        var connect = await hub.ConnectAsync(Gateway.Port, "not-the-secret");

        Assert.Equal(MqttClientConnectResultCode.BadUserNameOrPassword, connect.ResultCode);
        await AssertQuarantinedAsync(hubId, null, RejectCodes.BadCredentials);
    }

    [Fact]
    public async Task Publish_ForPumpPairedWithAnotherHub_IsRefusedAndQuarantined()
    {
        var (owner, serial) = await PairedHubAsync();
        await using var _ = owner;
        var (intruder, _) = await PairedHubAsync();
        await using var __ = intruder;

        var result = await intruder.PublishAsync(serial, Doses(1, 2));

        Assert.Equal(MqttClientPublishReasonCode.NotAuthorized, result.ReasonCode);
        await intruder.WaitForRejectAsync(serial, RejectCodes.PumpNotPaired);
        await AssertQuarantinedAsync(intruder.HubId, serial, RejectCodes.PumpNotPaired);
        Assert.Empty(await StoredSeqsAsync(serial));
        // The owner is still served.
        Assert.True((await owner.PublishAsync(serial, Doses(1, 2))).IsSuccess);
        await owner.WaitForAckAsync(serial, 2);
    }

    [Fact]
    public async Task Publish_OnAnotherHubsTopic_IsRefusedAndQuarantined()
    {
        var (owner, serial) = await PairedHubAsync();
        await using var _ = owner;
        var (intruder, own) = await PairedHubAsync();
        await using var __ = intruder;

        var result = await intruder.PublishRawAsync($"pumpfleet/v1/hubs/{owner.HubId}/pumps/{serial}/events", Encoding.UTF8.GetBytes(Doses(1, 1)));

        Assert.Equal(MqttClientPublishReasonCode.NotAuthorized, result.ReasonCode);
        await AssertQuarantinedAsync(intruder.HubId, serial, RejectCodes.HubMismatch);
        await intruder.WaitForRejectAsync(serial, RejectCodes.HubMismatch);
        Assert.Empty(await StoredSeqsAsync(serial));
        Assert.True((await intruder.PublishAsync(own, Doses(1, 1))).IsSuccess);
        await intruder.WaitForAckAsync(own, 1);
    }

    [Fact]
    public async Task Publish_ForUnpairedPump_IsRefusedAndQuarantined()
    {
        var (hub, paired) = await PairedHubAsync();
        await using var _ = hub;
        var unpaired = NewId("P");

        var result = await hub.PublishAsync(unpaired, Doses(1, 1));

        Assert.Equal(MqttClientPublishReasonCode.NotAuthorized, result.ReasonCode);
        await hub.WaitForRejectAsync(unpaired, RejectCodes.PumpNotPaired);
        await AssertQuarantinedAsync(hub.HubId, unpaired, RejectCodes.PumpNotPaired);
        Assert.True((await hub.PublishAsync(paired, Doses(1, 1))).IsSuccess);
    }

    [Fact]
    public async Task Publish_InvalidIdInTopic_IsRejectedAndQuarantined()
    {
        var (hub, _) = await PairedHubAsync();
        await using var __ = hub;
        var badSerial = "bad serial!";

        var result = await hub.PublishRawAsync($"pumpfleet/v1/hubs/{hub.HubId}/pumps/{badSerial}/events", Encoding.UTF8.GetBytes(Doses(1, 1)));

        Assert.Equal(MqttClientPublishReasonCode.PayloadFormatInvalid, result.ReasonCode);
        await AssertQuarantinedAsync(hub.HubId, badSerial, RejectCodes.InvalidTopic);
    }

    [Fact]
    public async Task Subscribe_ToAnotherHubsTopics_IsNotAuthorized()
    {
        var (hub, _) = await PairedHubAsync();
        await using var __ = hub;

        var r = await hub.Client.SubscribeAsync(new MqttClientSubscribeOptionsBuilder().WithTopicFilter("pumpfleet/v1/hubs/+/pumps/+/ack").Build(),
            TestContext.Current.CancellationToken);

        Assert.Equal(MqttClientSubscribeResultCode.NotAuthorized, r.Items.Single().ResultCode);
    }

    [Fact]
    public async Task Status_OnlineAndLastWill_AreTracked()
    {
        var (hub, _) = await PairedHubAsync();
        await hub.PublishRawAsync($"pumpfleet/v1/hubs/{hub.HubId}/status", """{"online":true,"firmware":"hub-1.2","at":"2026-11-24T03:00:00Z"}"""u8.ToArray());
        var store = (Hubs.HubStore)Gateway.Services.GetService(typeof(Hubs.HubStore))!;
        await Eventually.TrueAsync(async () => (await store.GetStatusAsync(hub.HubId, CancellationToken.None))?.Firmware == "hub-1.2",
            TimeSpan.FromSeconds(10), "the hub's status row");

        await hub.DisposeAsync();

        await Eventually.TrueAsync(async () => (await store.GetStatusAsync(hub.HubId, CancellationToken.None))?.Online == false,
            TimeSpan.FromSeconds(10), "the hub marked offline");
    }
}
