using System.Text;
using System.Text.Json;
using MQTTnet;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using PumpFleet.EventStore.Audit;
using PumpFleet.Gateway.Ingest;
using PumpFleet.Gateway.Protocol;
using PumpFleet.Gateway.Quarantine;
using PumpFleet.Gateway.Tests.Infrastructure;
using PumpFleet.TestSupport;
using static PumpFleet.Gateway.Tests.Infrastructure.Batches;

namespace PumpFleet.Gateway.Tests;

/// <summary>
/// Hostile and broken input through a real MQTT client against the embedded broker: every message is answered
/// (PUBACK, reject, quarantine row), none wedges the hub, and the ack never covers what is not accounted for.
/// </summary>
public sealed class HostileInputTests(PostgresFixture pg, EmbeddedEnvironment env) : IClassFixture<EmbeddedEnvironment>, IAsyncLifetime
{
    private GatewayUnderTest Gateway => env.Gateway;

    public async ValueTask InitializeAsync() => await env.EnsureStartedAsync(pg);

    public ValueTask DisposeAsync() => ValueTask.CompletedTask;

    private static string NewId(string prefix) => $"{prefix}-{Guid.NewGuid():N}"[..20];

    private async Task<(TestHub Hub, string Serial)> PairedHubAsync()
    {
        var hubId = NewId("hub");
        var serial = NewId("P");
        var secret = await Gateway.ProvisionAsync(hubId);
        Assert.Equal(Hubs.HubAdminStatus.Ok, await Gateway.Admin.PairAsync(hubId, serial, AuditActor.System("test"), null, TestContext.Current.CancellationToken));
        var hub = TestHub.Create(hubId);
        Assert.Equal(MqttClientConnectResultCode.Success, (await hub.ConnectAsync(Gateway.Port, secret)).ResultCode);
        return (hub, serial);
    }

    private async Task<List<long>> StoredSeqsAsync(string serial) =>
        [.. (await EmbeddedEnvironment.DeviceEventsAsync(Gateway.Services, serial)).Select(e => e.Seq!.Value)];

    private const string Valid1 = """{"seq":1,"type":"status","at":"2026-11-01T00:00:00Z","batteryPct":80}""";

    private static string Status(long seq, string extra = "") =>
        $$"""{"seq":{{seq}},"type":"status","at":"2026-11-01T02:00:00Z"{{extra}}}""";

    /// <summary>name, payload (UTF-8 unless it is a byte array in Base64 prefixed "b64:"), code, rejected seq (null: whole message).</summary>
    public static TheoryData<string, string, string, long?> HostileMessages() => new()
    {
        // The two reported examples.
        { "reported: lone surrogate escape as type", Batch(Valid1, """{"seq":2,"type":"\udc00","at":"2026-11-01T02:00:00Z"}"""), RejectCodes.InvalidUnicode, 2 },
        { "reported: seq 2^63-1", Batch(Valid1, Status(9223372036854775807)), RejectCodes.SeqOutOfRange, 9223372036854775807 },
        // Invalid Unicode and text.
        { "lone high surrogate in a free-text field", Batch(Valid1, """{"seq":2,"type":"refill","at":"2026-11-01T02:00:00Z","expectedResidualMl":1,"aspiratedResidualMl":1,"addedMl":10,"drug":"\ud800x","concentration":{"value":2,"unit":"mg/mL"}}"""), RejectCodes.InvalidUnicode, 2 },
        { "lone surrogate in an unknown extra field", Batch(Valid1, Status(2, ""","note":"\udfff" """)), RejectCodes.InvalidUnicode, 2 },
        { "lone surrogate in an event's property name (whole message: names are read to find duplicates)", Batch(Valid1, """{"seq":2,"type":"status","at":"2026-11-01T02:00:00Z","\udc00":1}"""), RejectCodes.InvalidUnicode, null },
        { "lone surrogate in a root property name", """{"v":1,"\udc00":0,"events":[{"seq":1,"type":"status","at":"2026-11-01T00:00:00Z"}]}""", RejectCodes.InvalidUnicode, null },
        { "lone surrogate in device", Batch(false, Valid1).Replace("\"v\":1,", "\"v\":1,\"device\":{\"model\":\"\\ud83d\",\"firmware\":\"1\",\"lot\":\"L\",\"reservoirCapacityMl\":40},", StringComparison.Ordinal), RejectCodes.InvalidUnicode, null },
        { "NUL character (jsonb refuses it)", Batch(Valid1, """{"seq":2,"type":"refill","at":"2026-11-01T02:00:00Z","expectedResidualMl":1,"aspiratedResidualMl":1,"addedMl":10,"drug":"mor\u0000phine","concentration":{"value":2,"unit":"mg/mL"}}"""), RejectCodes.InvalidUnicode, 2 },
        { "invalid UTF-8 bytes", "b64:" + Convert.ToBase64String([.. Encoding.UTF8.GetBytes("{\"v\":1,\"events\":[{\"seq\":1,\"type\":\""), 0xC3, 0x28, .. Encoding.UTF8.GetBytes("\",\"at\":\"2026-11-01T00:00:00Z\"}]}")]), RejectCodes.InvalidUnicode, 1 },
        { "invalid UTF-8 outside strings", "b64:" + Convert.ToBase64String([.. Encoding.UTF8.GetBytes("{\"v\":1,"), 0xFF, .. Encoding.UTF8.GetBytes("\"events\":[]}")]), RejectCodes.InvalidJson, null },
        { "emoji cut at the reason's 80th character", Batch(Valid1, Status(2, $$""","motor":"{{new string('x', 79)}}😀" """)), RejectCodes.InvalidValue, 2 },
        { "over-long string", Batch(Valid1, $$$"""{"seq":2,"type":"refill","at":"2026-11-01T02:00:00Z","expectedResidualMl":1,"aspiratedResidualMl":1,"addedMl":10,"drug":"{{{new string('m', 100_000)}}}","concentration":{"value":2,"unit":"mg/mL"}}"""), RejectCodes.InvalidValue, 2 },
        // Numbers.
        { "seq 2^53", Batch(Valid1, Status(9007199254740992)), RejectCodes.SeqOutOfRange, null },
        { "seq beyond 64 bits", Batch(Valid1, Status(0).Replace("\"seq\":0", "\"seq\":123456789012345678901234567890", StringComparison.Ordinal)), RejectCodes.SeqOutOfRange, null },
        { "seq beyond the window", Batch(Valid1, Status(5_000_000)), RejectCodes.SeqOutOfRange, 5_000_000 },
        { "volume 1e400 (not a double)", Batch(Valid1, """{"seq":2,"type":"reservoir.level","at":"2026-11-01T02:00:00Z","volumeMl":1e400,"source":"measured"}"""), RejectCodes.InvalidValue, 2 },
        { "temperature 1e308", Batch(Valid1, Status(2, ""","tempC":1e308""")), RejectCodes.InvalidValue, 2 },
        { "rate 1e300 (would overflow the ledger)", Batch(Valid1, """{"seq":2,"type":"prescription.set","at":"2026-11-01T02:00:00Z","drug":"morphine","concentration":{"value":25,"unit":"mg/mL"},"mode":"continuous","rateMlPerDay":1e300}"""), RejectCodes.InvalidValue, 2 },
        // Structure.
        { "duplicate key", """{"v":1,"events":[{"seq":1,"seq":2,"type":"status","at":"2026-11-01T00:00:00Z"}]}""", RejectCodes.DuplicateKey, null },
        { "deep nesting", Batch(Valid1, Status(2, ""","x":""" + new string('[', 5000) + new string(']', 5000))), RejectCodes.InvalidJson, null },
        { "huge flex schedule", Batch(Valid1, """{"seq":2,"type":"prescription.set","at":"2026-11-01T02:00:00Z","drug":"morphine","concentration":{"value":25,"unit":"mg/mL"},"mode":"flex","schedule":[""" + string.Join(",", Enumerable.Repeat("""{"start":"08:00","rateMlPerDay":0.5}""", 2000)) + "]}"), RejectCodes.InvalidValue, 2 },
        { "events.lost range not below its seq", Batch(Valid1, """{"seq":2,"type":"events.lost","at":"2026-11-01T02:00:00Z","fromSeq":1,"toSeq":5,"reason":"other"}"""), RejectCodes.InvalidLostRange, 2 },
    };

    [Theory]
    [MemberData(nameof(HostileMessages))]
    public async Task HostileMessage_IsAnsweredQuarantinedAndDoesNotWedgeTheHub(string name, string payload, string code, long? seq)
    {
        var (hub, serial) = await PairedHubAsync();
        await using var _ = hub;
        var bytes = payload.StartsWith("b64:", StringComparison.Ordinal) ? Convert.FromBase64String(payload[4..]) : Encoding.UTF8.GetBytes(payload);

        // The PUBACK arrives (the publish would throw if the gateway dropped the connection instead).
        var result = await hub.PublishRawAsync($"pumpfleet/v1/hubs/{hub.HubId}/pumps/{serial}/events", bytes);
        Assert.True(hub.Client.IsConnected, name);
        Assert.True(result.ReasonCode is MqttClientPublishReasonCode.Success or MqttClientPublishReasonCode.PayloadFormatInvalid, $"{name}: {result.ReasonCode}");

        var reject = await hub.WaitForRejectAsync(serial, code);
        Assert.False(string.IsNullOrWhiteSpace(reject.Json.GetProperty("reason").GetString()));
        if (seq is { } s)
        {
            Assert.Equal(s, reject.Json.GetProperty("seq").GetInt64());
        }

        var rows = await Gateway.Quarantine.QueryAsync(hub.HubId, serial, 100, null, TestContext.Current.CancellationToken);
        Assert.Contains(rows, r => r.Code == code);

        // Nothing hostile was stored; the ack never jumped.
        var stored = await StoredSeqsAsync(serial);
        Assert.All(stored, x => Assert.Equal(1, x));

        // The hub is not wedged: its next batch is stored and acknowledged.
        Assert.True((await hub.PublishAsync(serial, Batch(Valid1, Status(3)))).IsSuccess, name);
        var ack = await hub.WaitForAckAsync(serial, 1);
        Assert.Contains(3L, await StoredSeqsAsync(serial));
        Assert.True(ack.Json.GetProperty("committedSeq").GetInt64() <= 3);
    }

    [Fact]
    public async Task Ack_IsTheContiguousWatermark_WithHighestSeqAndMissing_AndEventsLostClosesTheGap()
    {
        var (hub, serial) = await PairedHubAsync();
        await using var _ = hub;

        Assert.True((await hub.PublishAsync(serial, Batch(Dose(1), Dose(2), Dose(5), Dose(9)))).IsSuccess);
        var ack = await hub.WaitForAsync(a => a.Topic.EndsWith($"{serial}/ack", StringComparison.Ordinal) && a.Json.GetProperty("highestSeq").GetInt64() == 9, "ack with highestSeq 9");
        Assert.Equal(2, ack.Json.GetProperty("committedSeq").GetInt64());
        Assert.Equal("[[3,4],[6,8]]", ack.Json.GetProperty("missing").GetRawText());

        // The hub resends 3 and 4 exactly, and declares 6..8 lost.
        Assert.True((await hub.PublishAsync(serial, Batch(false, Dose(3), Dose(4)))).IsSuccess);
        await hub.WaitForAckAsync(serial, 5);
        Assert.True((await hub.PublishAsync(serial, Batch(false,
            """{"seq":10,"type":"events.lost","at":"2026-11-01T10:00:00Z","fromSeq":6,"toSeq":8,"reason":"hub-buffer-overflow"}"""))).IsSuccess);
        ack = await hub.WaitForAckAsync(serial, 10);
        Assert.Equal("[]", ack.Json.GetProperty("missing").GetRawText());

        var view = await env.Cluster.Grains.GetGrain<Contracts.Grains.IPumpQueryGrain>(serial).GetStateAsync();
        Assert.Empty(view.Gaps);
        Assert.Equal(10, view.CommittedSeq);
        var lost = (await EmbeddedEnvironment.DeviceEventsAsync(Gateway.Services, serial)).Single(e => e.Type == "events.lost");
        Assert.Equal(10, lost.Seq);
    }

    [Fact]
    public async Task RejectedEvent_LeavesNoPhantomGap()
    {
        var (hub, serial) = await PairedHubAsync();
        await using var _ = hub;

        Assert.True((await hub.PublishAsync(serial, Batch(Dose(1), """{"seq":2,"type":"teleport","at":"2026-11-01T02:00:00Z"}""", Dose(3, volume: -1), Dose(4)))).IsSuccess);

        var ack = await hub.WaitForAckAsync(serial, 4);
        Assert.Equal(4, ack.Json.GetProperty("committedSeq").GetInt64());
        Assert.Equal("[]", ack.Json.GetProperty("missing").GetRawText());
        Assert.Equal([1L, 4L], await StoredSeqsAsync(serial));

        // A batch whose only event is invalid still moves the watermark past it.
        var only = await hub.PublishAsync(serial, Batch(false, """{"seq":5,"type":"teleport","at":"2026-11-01T02:00:00Z"}"""));
        Assert.Equal(MqttClientPublishReasonCode.PayloadFormatInvalid, only.ReasonCode);
        await hub.WaitForAckAsync(serial, 5);
    }

    [Fact]
    public async Task UnexpectedFailure_IsRetriedThenQuarantinedAsPoison_AndTheHubMovesOn()
    {
        // A gateway of its own whose grain factory throws the same unexpected exception for POISON… pumps.
        await using var gw = await GatewayUnderTest.StartAsync(env.ConnectionString, PoisonGrainFactory.Wrap(env.Cluster.Grains));
        var hubId = NewId("hub");
        var poisoned = PoisonGrainFactory.Prefix + NewId("-");
        var healthy = NewId("P");
        var secret = await gw.ProvisionAsync(hubId);
        await gw.Admin.PairAsync(hubId, poisoned, AuditActor.System("test"), null, TestContext.Current.CancellationToken);
        await gw.Admin.PairAsync(hubId, healthy, AuditActor.System("test"), null, TestContext.Current.CancellationToken);
        await using var hub = TestHub.Create(hubId);

        // Like a real hub: publish, and after a dropped connection reconnect and resend, until a PUBACK arrives.
        var attempts = 0;
        MqttClientPublishResult? answered = null;
        await Eventually.TrueAsync(async () =>
        {
            if (!hub.Client.IsConnected)
            {
                Assert.Equal(MqttClientConnectResultCode.Success, (await hub.ConnectAsync(gw.Port, secret)).ResultCode);
            }

            attempts++;
            answered = await hub.PublishAsync(poisoned, Doses(1, 3));
            return true;
        }, TimeSpan.FromSeconds(60), "the poison message to be answered", TimeSpan.FromMilliseconds(100));

        Assert.Equal(MqttClientPublishReasonCode.PayloadFormatInvalid, answered!.ReasonCode);
        Assert.Equal(3, attempts); // PoisonThreshold: two unacknowledged attempts, the third is quarantined
        await hub.WaitForRejectAsync(poisoned, RejectCodes.PoisonMessage);
        var rows = await gw.Quarantine.QueryAsync(hubId, poisoned, 10, null, TestContext.Current.CancellationToken);
        Assert.Contains(rows, r => r.Code == RejectCodes.PoisonMessage && r.Scope == "message");

        // The hub is not wedged: its other pump is served on the same connection.
        Assert.True((await hub.PublishAsync(healthy, Doses(1, 2))).IsSuccess);
        await hub.WaitForAckAsync(healthy, 2);
    }
}

/// <summary>Limits before trust: failed-login backoff and quarantine retention.</summary>
public sealed class LimitTests(PostgresFixture pg, EmbeddedEnvironment env) : IClassFixture<EmbeddedEnvironment>, IAsyncLifetime
{
    public async ValueTask InitializeAsync() => await env.EnsureStartedAsync(pg);

    public ValueTask DisposeAsync() => ValueTask.CompletedTask;

    [Fact]
    public async Task WrongPassword_BacksTheHubIdOff_ThenTheRightPasswordIsAcceptedAgain()
    {
        var hubId = $"hub-{Guid.NewGuid():N}"[..20];
        var secret = await env.Gateway.ProvisionAsync(hubId);
        await using var hub = TestHub.Create(hubId);

        Assert.Equal(MqttClientConnectResultCode.BadUserNameOrPassword, (await hub.ConnectAsync(env.Gateway.Port, "wrong-password-0123456789")).ResultCode);
        // Within the backoff even the right password is turned away, before any database read or PBKDF2.
        Assert.Equal(MqttClientConnectResultCode.ConnectionRateExceeded, (await hub.ConnectAsync(env.Gateway.Port, secret)).ResultCode);

        await Eventually.TrueAsync(async () => (await hub.ConnectAsync(env.Gateway.Port, secret)).ResultCode == MqttClientConnectResultCode.Success,
            TimeSpan.FromSeconds(30), "the hub to be accepted after its backoff", TimeSpan.FromMilliseconds(250));
    }

    [Fact]
    public async Task HubOverItsMessageRate_IsDisconnectedUnacknowledged_AndItsResendIsStored()
    {
        await using var gw = await GatewayUnderTest.StartAsync(env.ConnectionString, env.Cluster.Grains, settings: new Dictionary<string, string?>
        {
            ["Gateway:Mqtt:HubMessagesPerSecond"] = "0.5",
            ["Gateway:Mqtt:HubMessageBurst"] = "2",
        });
        var hubId = $"hub-{Guid.NewGuid():N}"[..20];
        var serial = $"P-{Guid.NewGuid():N}"[..20];
        var secret = await gw.ProvisionAsync(hubId);
        await gw.Admin.PairAsync(hubId, serial, AuditActor.System("test"), null, TestContext.Current.CancellationToken);
        await using var hub = TestHub.Create(hubId);
        Assert.Equal(MqttClientConnectResultCode.Success, (await hub.ConnectAsync(gw.Port, secret)).ResultCode);

        Assert.True((await hub.PublishAsync(serial, Batches.Doses(1, 1))).IsSuccess);
        Assert.True((await hub.PublishAsync(serial, Batches.Batch(false, Batches.Dose(2)))).IsSuccess);
        // The third within the burst window: no PUBACK, the connection is closed.
        await Assert.ThrowsAnyAsync<Exception>(() => hub.PublishAsync(serial, Batches.Batch(false, Batches.Dose(3))));

        await Eventually.TrueAsync(async () =>
        {
            if (!hub.Client.IsConnected)
            {
                await hub.ConnectAsync(gw.Port, secret);
            }

            return (await hub.PublishAsync(serial, Batches.Batch(false, Batches.Dose(3)))).IsSuccess;
        }, TimeSpan.FromSeconds(30), "the resend to be accepted once the bucket refilled", TimeSpan.FromMilliseconds(500));
        await hub.WaitForAckAsync(serial, 3);
    }

    [Fact]
    public async Task QuarantinePurge_DeletesRowsPastRetention_AndKeepsRecentOnes()
    {
        // Every gateway started by this assembly shares the database and purges with the default 30-day retention
        // when it starts, so a row older than that could be gone before this purge runs (CI once saw 0 deleted).
        // This purger keeps 1 day: the 2-day-old row is past its retention and no other purger's.
        var hubId = $"hub-{Guid.NewGuid():N}"[..20];
        var now = DateTimeOffset.UtcNow;
        await env.Gateway.Quarantine.AddAsync(
        [
            new QuarantineItem(hubId, null, "t", true, false, null, "invalid-json", "old", now.AddDays(-2), new byte[] { 1 }),
            new QuarantineItem(hubId, null, "t", true, false, null, "invalid-json", "new", now, new byte[] { 2 }),
        ], TestContext.Current.CancellationToken);
        var services = env.Gateway.Services;
        var purger = new QuarantinePurger(
            env.Gateway.Quarantine,
            Options.Create(new QuarantineOptions { Retention = TimeSpan.FromDays(1) }),
            services.GetRequiredService<GatewayInstruments>(),
            TimeProvider.System,
            NullLogger<QuarantinePurger>.Instance);

        var deleted = await purger.PurgeOnceAsync(TestContext.Current.CancellationToken);

        Assert.True(deleted >= 1, $"deleted {deleted} rows");
        var rows = await env.Gateway.Quarantine.QueryAsync(hubId, null, 10, null, TestContext.Current.CancellationToken);
        Assert.Equal(["new"], rows.Select(r => r.Reason));
    }

    [Fact]
    public void QuarantineText_IsCleanedForPostgreSql()
    {
        Assert.Equal("a\uFFFDb\uFFFDc😀", QuarantineStore.Clean("a\udc00b\0c😀"));
        Assert.Equal(QuarantineStore.MaxTextLength + 1, QuarantineStore.Clean(new string('x', 100_000)).Length);
    }
}
