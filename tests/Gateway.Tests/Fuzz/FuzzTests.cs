using System.Text;
using System.Text.Json;
using Microsoft.Extensions.DependencyInjection;
using MQTTnet;
using PumpFleet.Contracts.Events;
using PumpFleet.Contracts.Grains;
using PumpFleet.Contracts.Json;
using PumpFleet.EventStore;
using PumpFleet.EventStore.Audit;
using PumpFleet.Gateway.Protocol;
using PumpFleet.Gateway.Quarantine;
using PumpFleet.Gateway.Tests.Infrastructure;
using PumpFleet.Domain.Pumps;
using PumpFleet.TestSupport;

namespace PumpFleet.Gateway.Tests.Fuzz;

/// <summary>
/// Property-based fuzzing with a fixed seed and budget (CI runs exactly these messages; set
/// <c>PUMPFLEET_FUZZ_BUDGET</c> and <c>PUMPFLEET_FUZZ_SEED</c> to search longer or elsewhere). Every failure a run
/// finds is kept as a named case in <see cref="HostileInputTests"/> or the parser tests.
/// </summary>
public sealed class FuzzTests
{
    private static int Seed => int.TryParse(Environment.GetEnvironmentVariable("PUMPFLEET_FUZZ_SEED"), out var s) ? s : 20261129;

    private static int Budget(int ci) => int.TryParse(Environment.GetEnvironmentVariable("PUMPFLEET_FUZZ_BUDGET"), out var b) ? b : ci;

    private static readonly UTF8Encoding StrictUtf8 = new(false, true);

    /// <summary>One generated message: the mutation class (or "valid") and the bytes.</summary>
    internal static (string Class, byte[] Payload) Message(Random rng, long next, bool device, double mutateShare)
    {
        var json = HostileBatches.Batch(rng, HostileBatches.Seqs(rng, next), device);
        return rng.NextDouble() < mutateShare ? HostileBatches.Mutate(rng, json) : ("valid", Encoding.UTF8.GetBytes(json));
    }

    [Fact]
    public void Parser_AnswersEveryMessagePrecisely_AndWhatItAcceptsCanBeStoredAndReplied()
    {
        var rng = new Random(Seed);
        var byClass = new Dictionary<string, int>(StringComparer.Ordinal);
        var budget = Budget(4000);
        for (var i = 0; i < budget; i++)
        {
            var (cls, payload) = Message(rng, rng.Next(1, 2000), rng.Next(2) == 0, mutateShare: 0.8);
            byClass[cls] = byClass.GetValueOrDefault(cls) + 1;
            var context = $"message {i} ({cls}): {Encoding.UTF8.GetString(payload)[..Math.Min(300, payload.Length)]}";

            var r = BatchParser.Parse(payload);

            if (r.Error is { } error)
            {
                // The parser's last-resort catch means an unforeseen failure: every error must be classified.
                Assert.False(error.Reason.Contains("cannot be read as a v1 batch", StringComparison.Ordinal), $"{context} → {error.Reason}");
                AssertReplyable(error, context);
                continue;
            }

            var batch = r.Batch!;
            long previous = 0;
            foreach (var e in batch.Events)
            {
                Assert.True(e.Seq > previous && e.Seq <= RejectionCodes.MaxSeq, context);
                previous = e.Seq;
                // The storage path: the event serialises (jsonb-safe) and comes back equal.
                var stored = EventJson.Serialize(e);
                Assert.DoesNotContain("\\u0000", stored, StringComparison.Ordinal);
                Assert.Equal(stored, EventJson.Serialize(EventJson.Deserialize(EventTypes.NameOf(e), stored)));
            }

            foreach (var bad in batch.Invalid)
            {
                Assert.False(bad.Reason.Contains("cannot be read", StringComparison.Ordinal), $"{context} → {bad.Reason}");
                AssertReplyable(new Problem(bad.Seq, bad.Code, bad.Reason), context);
            }
        }

        TestContext.Current.SendDiagnosticMessage($"parser fuzz, seed {Seed}: " + string.Join(", ", byClass.OrderBy(k => k.Key).Select(k => $"{k.Key} {k.Value}")));
    }

    private static void AssertReplyable(Problem p, string context)
    {
        Assert.False(string.IsNullOrWhiteSpace(p.Code), context);
        Assert.False(string.IsNullOrWhiteSpace(p.Reason), context);
        // The quarantine row and the MQTT reply can be written whatever the hub sent.
        _ = StrictUtf8.GetBytes(QuarantineStore.Clean(p.Reason));
        _ = JsonSerializer.SerializeToUtf8Bytes(new RejectPayload(p.Seq, p.Code, p.Reason), GatewayJson.Options);
    }

    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    [InlineData(2)]
    public void Pipeline_InProcess_NoSeqStoredTwice_AndTheWatermarkNeverCoversAMissingEvent(int run)
    {
        var rng = new Random(Seed + run);
        var state = new PumpState { Serial = "FUZZ" };
        var version = 0L;
        var stream = new List<(string Type, string Data, long? Seq)>();
        void Append(PumpEvent e, long? seq, bool suspect)
        {
            // Through the storage serialisation, as the grain appends and a replay reads.
            var data = EventJson.Serialize(e);
            stream.Add((EventTypes.NameOf(e), data, seq));
            state.Apply(EventJson.Deserialize(EventTypes.NameOf(e), data), new EventEnvelope(++version, seq, DateTimeOffset.UnixEpoch, suspect));
        }

        Append(new PumpPaired { At = DateTimeOffset.UnixEpoch, HubId = "H" }, null, false);
        var stored = new HashSet<long>();
        var accounted = new HashSet<long>();
        long next = 1;
        var budget = Budget(1500);
        for (var i = 0; i < budget; i++)
        {
            var (_, payload) = Message(rng, next, device: i == 0 || rng.Next(10) == 0, mutateShare: 0.3);
            if (i > 0 && state.Seqs.FirstMissing(1) is [var gap] && rng.Next(3) == 0)
            {
                // A hub following the ack: resend the first missing range, or declare it lost.
                payload = Encoding.UTF8.GetBytes(rng.Next(2) == 0
                    ? HostileBatches.Batch(rng, [.. Enumerable.Range(0, (int)Math.Min(20, gap.To - gap.From + 1)).Select(k => gap.From + k)], withDevice: false)
                    : $$"""{"v":1,"events":[{"seq":{{next}},"type":"events.lost","at":"2026-11-01T00:00:00Z","fromSeq":{{gap.From}},"toSeq":{{gap.To}},"reason":"hub-buffer-overflow"}]}""");
            }

            var parsed = BatchParser.Parse(payload);
            if (parsed.Batch is not { } batch)
            {
                continue;
            }

            var ingest = new IngestBatch
            {
                HubId = "H", ReceivedAt = DateTimeOffset.UnixEpoch.AddDays(20_000), Device = batch.Device, Events = batch.Events,
                RejectedSeqs = [.. batch.Invalid.Where(x => x.Seq is not null).Select(x => new RejectedSeq(x.Seq!.Value, x.Code))],
            };
            var plan = IngestPlanner.Plan(state, ingest, Guid.NewGuid, seqWindow: 10_000);
            foreach (var p in plan.Events)
            {
                if (p.Seq is { } s)
                {
                    Assert.True(stored.Add(s), $"message {i}: seq {s} stored twice");
                    accounted.Add(s);
                    next = Math.Max(next, s + 1);
                }

                switch (p.Event)
                {
                    case SeqsRejected x:
                        accounted.UnionWith(x.Rejected.Select(r => r.Seq));
                        break;
                    case EventsLost x:
                        for (var l = x.FromSeq; l <= x.ToSeq; l++)
                        {
                            accounted.Add(l);
                        }

                        break;
                }

                Append(p.Event, p.Seq, p.ClockSuspect);
            }

            var watermark = state.Seqs.Watermark;
            for (long s = 1; s <= watermark; s++)
            {
                Assert.True(accounted.Contains(s), $"message {i}: committedSeq {watermark} covers seq {s}, which is neither stored, rejected nor declared lost");
            }

            Assert.Equal(stored.Count == 0 ? 0 : stored.Max(), state.LastSeq);
            Assert.All(state.Seqs.Missing, g => Assert.True(g.From > watermark && g.To < state.Seqs.Horizon + 1));
        }

        // A replay of the stream gives the same accounting (the fold is deterministic).
        var replay = new PumpState { Serial = "FUZZ" };
        var v = 0L;
        foreach (var (type, data, seq) in stream)
        {
            replay.Apply(EventJson.Deserialize(type, data), new EventEnvelope(++v, seq, DateTimeOffset.UnixEpoch, false));
        }

        Assert.Equal(JsonSerializer.Serialize(state.Seqs, SnapshotJson.Options), JsonSerializer.Serialize(replay.Seqs, SnapshotJson.Options));
        TestContext.Current.SendDiagnosticMessage($"pipeline fuzz run {run}: {stored.Count} stored, watermark {state.Seqs.Watermark}, {state.Seqs.MissingCount} gap ranges");
    }
}

/// <summary>The same generator through a real MQTT client and the embedded gateway, with a smaller budget.</summary>
public sealed class MqttFuzzTests(PostgresFixture pg, EmbeddedEnvironment env) : IClassFixture<EmbeddedEnvironment>, IAsyncLifetime
{
    public async ValueTask InitializeAsync() => await env.EnsureStartedAsync(pg);

    public ValueTask DisposeAsync() => ValueTask.CompletedTask;

    [Fact]
    public async Task ThroughMqtt_EveryMessageAnswered_NoSeqStoredTwice_AndTheAckNeverCoversAMissingEvent()
    {
        var gateway = env.Gateway;
        var hubId = $"hub-{Guid.NewGuid():N}"[..20];
        var serial = $"FZ-{Guid.NewGuid():N}"[..20];
        var secret = await gateway.ProvisionAsync(hubId);
        await gateway.Admin.PairAsync(hubId, serial, AuditActor.System("test"), null, TestContext.Current.CancellationToken);
        await using var hub = TestHub.Create(hubId);
        Assert.Equal(MqttClientConnectResultCode.Success, (await hub.ConnectAsync(gateway.Port, secret)).ResultCode);

        var rng = new Random(int.TryParse(Environment.GetEnvironmentVariable("PUMPFLEET_FUZZ_SEED"), out var s) ? s : 20261129);
        long next = 1;
        var budget = int.TryParse(Environment.GetEnvironmentVariable("PUMPFLEET_FUZZ_BUDGET"), out var b) ? b / 10 : 150;
        var topic = $"pumpfleet/v1/hubs/{hubId}/pumps/{serial}/events";
        for (var i = 0; i < budget; i++)
        {
            var (cls, payload) = FuzzTests.Message(rng, next, device: i == 0 || rng.Next(10) == 0, mutateShare: 0.5);
            // Every message is answered: a PUBACK (the publish throws if the gateway dropped the connection).
            var result = await hub.PublishRawAsync(topic, payload);
            Assert.True(hub.Client.IsConnected, $"message {i} ({cls}) dropped the connection");
            Assert.True(result.ReasonCode is MqttClientPublishReasonCode.Success or MqttClientPublishReasonCode.PayloadFormatInvalid,
                $"message {i} ({cls}): {result.ReasonCode}");
            next += rng.Next(0, 8);
        }

        // A last valid batch, so the final ack reflects everything before it.
        var last = next + 1;
        Assert.True((await hub.PublishAsync(serial, HostileBatches.Batch(rng, [last], withDevice: true))).IsSuccess);
        var ack = await hub.WaitForStoredAsync(serial, last);

        // Then close every gap the ack lists, as a hub that lost those events would: events.lost per missing range,
        // until the watermark reaches the top.
        for (var round = 0; round < 100 && ack.Json.GetProperty("missing").GetArrayLength() > 0; round++)
        {
            var lost = new List<string>();
            foreach (var range in ack.Json.GetProperty("missing").EnumerateArray())
            {
                lost.Add($$"""{"seq":{{++last}},"type":"events.lost","at":"2026-11-01T00:00:00Z","fromSeq":{{range[0].GetInt64()}},"toSeq":{{range[1].GetInt64()}},"reason":"other"}""");
            }

            Assert.True((await hub.PublishAsync(serial, $"{{\"v\":1,\"events\":[{string.Join(",", lost)}]}}")).IsSuccess);
            ack = await hub.WaitForStoredAsync(serial, last);
        }

        var committed = ack.Json.GetProperty("committedSeq").GetInt64();
        Assert.Equal(last, committed); // every seq up to the top is now stored, rejected or declared lost

        var store = gateway.Services.GetRequiredService<IEventStore>();
        var seqs = new List<long>();
        var accounted = new HashSet<long>();
        await foreach (var e in store.ReadStreamAsync(serial, 0, TestContext.Current.CancellationToken))
        {
            if (e.Seq is { } seq)
            {
                seqs.Add(seq);
                accounted.Add(seq);
            }

            switch (EventJson.Deserialize(e.Type, e.Data))
            {
                case SeqsRejected x:
                    accounted.UnionWith(x.Rejected.Select(r => r.Seq));
                    break;
                case EventsLost x:
                    for (var l = x.FromSeq; l <= x.ToSeq; l++)
                    {
                        accounted.Add(l);
                    }

                    break;
            }
        }

        Assert.Equal(seqs.Count, seqs.Distinct().Count());
        for (long q = 1; q <= committed; q++)
        {
            Assert.Contains(q, accounted);
        }

        TestContext.Current.SendDiagnosticMessage($"MQTT fuzz: {budget} messages, {seqs.Count} events stored, committedSeq {committed}");
    }
}
