using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.Json;
using Microsoft.Extensions.DependencyInjection;
using MQTTnet;
using MQTTnet.Protocol;
using Npgsql;
using OpenTelemetry.Trace;
using PumpFleet.EventStore;
using PumpFleet.EventStore.Log;
using PumpFleet.Gateway.Hosting;
using PumpFleet.Gateway.Ingest;
using PumpFleet.Grains;
using PumpFleet.Projections;
using PumpFleet.ReadModels;
using PumpFleet.ServiceDefaults;
using PumpFleet.TestSupport;

namespace PumpFleet.Monitoring.Tests;

/// <summary>
/// The span tree of one hub message, end to end, on a gateway and silo in one host with tracing on and the in-memory
/// exporter: the hub's W3C trace context (MQTT 5 user property <c>traceparent</c>) is continued through receive,
/// authorisation, parse, the grain call (Orleans' activity propagation), plan, fold, detect, the one append (its commit
/// with Npgsql's command spans) and the ack publish.
/// </summary>
public sealed class TracingTests(PostgresFixture pg) : IAsyncLifetime
{
    private const string FleetSecret = "tracing-test-fleet-secret";
    private readonly List<Activity> _spans = [];
    private readonly string _hubId = $"tr-hub-{Guid.NewGuid():N}"[..14];
    private WebApplication _host = null!;
    private int _mqttPort;

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    public async ValueTask InitializeAsync()
    {
        // The read models' migrations create pf_projection_progress, which the projection engine's page writes.
        var cs = await pg.CreateDatabaseAsync("tracing", typeof(ProjectionRunner).Assembly, typeof(ReadModelsServiceCollectionExtensions).Assembly, typeof(GatewayServiceCollectionExtensions).Assembly);
        _mqttPort = Ports.Free();
        var builder = WebApplication.CreateBuilder(new WebApplicationOptions { EnvironmentName = "Development", ApplicationName = typeof(TracingTests).Assembly.GetName().Name });
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        builder.Configuration.AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["ConnectionStrings:PumpFleet"] = cs,
            ["Logging:LogLevel:Default"] = "Warning",
            ["PumpFleet:Tracing:Enabled"] = "true",
            ["Gateway:Mqtt:Port"] = _mqttPort.ToString(CultureInfo.InvariantCulture),
            ["Gateway:Mqtt:BindAddress"] = "127.0.0.1",
            ["Gateway:Hubs:DevFleetSecret"] = FleetSecret,
            ["Gateway:Hubs:AutoPairOnFirstBatch"] = "true",
        });
        builder.AddServiceDefaults();
        builder.Services.ConfigureOpenTelemetryTracerProvider(t => t.AddInMemoryExporter(_spans));
        builder.Services.AddPumpFleetEventStore(cs);
        builder.Services.AddPumpFleetGateway(builder.Configuration);
        builder.Services.AddPumpFleetGrains();
        // The projection engine with one probe projection, run by hand: the page span and its links to ingest traces.
        builder.Services.AddPumpFleetProjectionEngine();
        builder.Services.AddSingleton<IProjection, ProbeProjection>();
        builder.UseOrleans(silo =>
        {
            silo.UseLocalhostClustering(Ports.Free(), Ports.Free(), serviceId: "pumpfleet", clusterId: "pumpfleet-tracing");
            silo.AddActivityPropagation();
        });
        _host = builder.Build();
        _host.MapDefaultEndpoints();
        await _host.StartAsync(Ct);
    }

    public async ValueTask DisposeAsync()
    {
        if (_host is not null)
        {
            await _host.StopAsync();
            await _host.DisposeAsync();
        }
    }

    [Fact]
    public async Task OneMessage_WithHubTraceparent_HasASpanPerStage_InOneTreeUnderTheHubsSpan()
    {
        var serial = $"TR-{Guid.NewGuid():N}"[..14];
        var hubTrace = ActivityTraceId.CreateRandom();
        var hubSpan = ActivitySpanId.CreateRandom();
        using var client = await ConnectAsync();

        // The pump's first batch pairs it (dev-fleet auto-pairing: a second grain call) and brings its device; the
        // traced message is the steady state after that, one grain call.
        await PublishAsync(client, serial, FirstBatch(), $"00-{ActivityTraceId.CreateRandom()}-{ActivitySpanId.CreateRandom()}-01");
        await WaitForAckAsync(serial, 3);
        await PublishAsync(client, serial, SecondBatch(), $"00-{hubTrace}-{hubSpan}-01");
        await WaitForAckAsync(serial, 4);

        Activity[] trace = [];
        await Eventually.TrueAsync(() =>
        {
            trace = Snapshot().Where(a => a.TraceId == hubTrace).ToArray();
            return Task.FromResult(trace.Any(a => a.DisplayName == "mqtt receive") && trace.Any(a => a.DisplayName == "publish ack")
                && trace.Any(a => a.DisplayName == "puback"));
        }, TimeSpan.FromSeconds(20), "the receive, ack and PUBACK spans of the hub's trace");
        var tree = Describe(trace);

        var receive = Single(trace, GatewayTracing.SourceName, "mqtt receive", tree);
        Assert.Equal(hubSpan, receive.ParentSpanId);
        Assert.Equal(ActivityKind.Consumer, receive.Kind);
        Assert.Equal(_hubId, receive.GetTagItem("pumpfleet.hub_id"));

        // Gateway stages, children of the receive span.
        var authorize = Single(trace, GatewayTracing.SourceName, "authorize", tree);
        var parse = Single(trace, GatewayTracing.SourceName, "parse", tree);
        var grainCall = Single(trace, GatewayTracing.SourceName, "grain call", tree);
        var ack = Single(trace, GatewayTracing.SourceName, "publish ack", tree);
        foreach (var child in new[] { authorize, parse, grainCall, ack })
        {
            Assert.True(child.ParentSpanId == receive.SpanId, $"{child.DisplayName} is not a child of the receive span\n{tree}");
        }

        // Stages in order: authorise, parse, call the grain, then acknowledge.
        Assert.True(authorize.StartTimeUtc <= parse.StartTimeUtc && parse.StartTimeUtc <= grainCall.StartTimeUtc
            && grainCall.StartTimeUtc + grainCall.Duration <= ack.StartTimeUtc, tree);

        // Orleans: the client span under the gateway's grain call, the grain's server span under it.
        var orleansClient = trace.Single(a => a.ParentSpanId == grainCall.SpanId && a.Source.Name.StartsWith("Microsoft.Orleans", StringComparison.Ordinal));
        var orleansServer = trace.Single(a => a.ParentSpanId == orleansClient.SpanId && a.Source.Name.StartsWith("Microsoft.Orleans", StringComparison.Ordinal));
        Assert.Contains("IngestAsync", orleansServer.DisplayName, StringComparison.Ordinal);

        // Inside the grain (issue 15: one commit per message): plan, fold, detect, then one append of the batch and
        // the detectors' decisions; its commit (a lone append's "group commit") has Npgsql's command below it.
        var plan = Single(trace, GrainsTracing.SourceName, "plan", tree);
        var fold = Single(trace, GrainsTracing.SourceName, "fold", tree);
        var detect = Single(trace, GrainsTracing.SourceName, "detect", tree);
        var dataAppend = Single(trace, EventStoreTracing.SourceName, "append", tree);
        foreach (var child in new[] { plan, fold, detect, dataAppend })
        {
            Assert.True(child.ParentSpanId == orleansServer.SpanId, $"{child.DisplayName} is not a child of the grain's server span\n{tree}");
        }

        Assert.Equal(serial, dataAppend.GetTagItem("pumpfleet.stream_id"));
        Assert.Equal(1, dataAppend.GetTagItem("pumpfleet.events"));
        Assert.True(plan.StartTimeUtc <= fold.StartTimeUtc && fold.StartTimeUtc <= detect.StartTimeUtc
            && detect.StartTimeUtc + detect.Duration <= dataAppend.StartTimeUtc, tree);
        var commit = Single(trace, EventStoreTracing.SourceName, "group commit", tree);
        Assert.Equal(dataAppend.SpanId, commit.ParentSpanId);
        Assert.Contains(commit.Links, l => l.Context.SpanId == dataAppend.SpanId);
        Assert.Contains(trace, a => a.Source.Name == "Npgsql" && a.ParentSpanId == commit.SpanId);

        // The PUBACK: a child of the receive span that starts when the interceptor has returned (after the ack
        // publish) and ends when MQTTnet hands the PUBACK of this very packet to the connection.
        var puback = Single(trace, GatewayTracing.SourceName, "puback", tree);
        Assert.Equal(receive.SpanId, puback.ParentSpanId);
        Assert.Equal(ActivityKind.Producer, puback.Kind);
        Assert.True(puback.StartTimeUtc >= ack.StartTimeUtc + ack.Duration, tree);
        Assert.Equal(_lastPacketId, Convert.ToInt32(puback.GetTagItem("mqtt.packet_id"), CultureInfo.InvariantCulture));

        // Every other span of the message lies within the receive span.
        var end = receive.StartTimeUtc + receive.Duration;
        Assert.All(trace.Where(a => a != receive && a != puback), a => Assert.True(a.StartTimeUtc >= receive.StartTimeUtc && a.StartTimeUtc + a.Duration <= end, $"{a.DisplayName} outside the receive span\n{tree}"));

        // The read-model write: the projection page that applies the stored event links to the trace that ingested
        // it (the grain's server span, whose traceparent the grain stored in the event's metadata).
        // Pages are run until one has applied the event: the gap-safe reader may hold back while another test's
        // transaction is open on the shared server.
        var runner = _host.Services.GetRequiredService<ProjectionRunner>();
        Activity[] pages = [];
        await Eventually.TrueAsync(async () =>
        {
            await runner.RunPageAsync(ProbeProjection.ProbeName, LogPartitioning.PartitionOf(serial), Ct);
            pages = [.. Snapshot().Where(a => a.Source.Name == ProjectionTracing.SourceName && a.DisplayName == "projection page"
                && a.Links.Any(l => l.Context.TraceId == hubTrace))];
            return pages.Length > 0;
        }, TimeSpan.FromSeconds(20), "a projection page linked to the hub's trace");
        var page = Assert.Single(pages);
        var link = Assert.Single(page.Links, l => l.Context.TraceId == hubTrace);
        Assert.Equal(orleansServer.SpanId, link.Context.SpanId);
        Assert.Equal(ProbeProjection.ProbeName, page.GetTagItem("pumpfleet.projection"));
    }

    [Fact]
    public async Task Message_WithoutOrWithInvalidTraceparent_IsAcceptedAndStartsANewTrace()
    {
        var serial = $"TR-{Guid.NewGuid():N}"[..14];
        using var client = await ConnectAsync();

        await PublishAsync(client, serial, FirstBatch(), "00-not-a-trace-context");
        await WaitForAckAsync(serial, 3);

        Activity? receive = null;
        await Eventually.TrueAsync(() =>
        {
            receive = Snapshot().FirstOrDefault(a => a.DisplayName == "mqtt receive" && (string?)a.GetTagItem("messaging.destination.name") == $"pumpfleet/v1/hubs/{_hubId}/pumps/{serial}/events");
            return Task.FromResult(receive is not null);
        }, TimeSpan.FromSeconds(20), "the receive span");
        Assert.Equal(default, receive!.ParentSpanId);
        Assert.Contains(Snapshot(), a => a.TraceId == receive.TraceId && a.DisplayName == "publish ack");
    }

    private Activity[] Snapshot()
    {
        // The in-memory exporter appends under its processor's lock; copy until a copy succeeds without a concurrent write.
        while (true)
        {
            try
            {
                return [.. _spans];
            }
            catch (InvalidOperationException)
            {
            }
        }
    }

    private static Activity Single(Activity[] trace, string source, string name, string tree)
    {
        var matches = trace.Where(a => a.Source.Name == source && a.DisplayName == name).ToArray();
        Assert.True(matches.Length == 1, $"expected one {source} '{name}' span, found {matches.Length}\n{tree}");
        return matches[0];
    }

    private static string Describe(Activity[] trace)
    {
        var sb = new StringBuilder();
        var ids = trace.Select(a => a.SpanId).ToHashSet();
        void Walk(Activity a, int depth)
        {
            sb.Append(' ', depth * 2).Append(a.Source.Name).Append(" / ").Append(a.DisplayName)
                .Append(CultureInfo.InvariantCulture, $" ({a.Duration.TotalMilliseconds:F2} ms)").AppendLine();
            foreach (var c in trace.Where(c => c.ParentSpanId == a.SpanId).OrderBy(c => c.StartTimeUtc))
            {
                Walk(c, depth + 1);
            }
        }

        foreach (var root in trace.Where(a => !ids.Contains(a.ParentSpanId)).OrderBy(a => a.StartTimeUtc))
        {
            Walk(root, 0);
        }

        return sb.ToString();
    }

    private async Task<IMqttClient> ConnectAsync()
    {
        var client = new MqttClientFactory().CreateMqttClient();
        var password = Convert.ToHexStringLower(System.Security.Cryptography.HMACSHA256.HashData(Encoding.UTF8.GetBytes(FleetSecret), Encoding.UTF8.GetBytes(_hubId)));
        client.ApplicationMessageReceivedAsync += e =>
        {
            lock (_acks)
            {
                _acks.Add((e.ApplicationMessage.Topic, e.ApplicationMessage.ConvertPayloadToString()));
            }

            return Task.CompletedTask;
        };
        var r = await client.ConnectAsync(new MqttClientOptionsBuilder().WithTcpServer("127.0.0.1", _mqttPort).WithClientId(_hubId)
            .WithCredentials(_hubId, password).WithProtocolVersion(MQTTnet.Formatter.MqttProtocolVersion.V500).Build(), Ct);
        Assert.Equal(MqttClientConnectResultCode.Success, r.ResultCode);
        await client.SubscribeAsync(new MqttClientSubscribeOptionsBuilder()
            .WithTopicFilter(f => f.WithTopic($"pumpfleet/v1/hubs/{_hubId}/pumps/+/ack").WithQualityOfServiceLevel(MqttQualityOfServiceLevel.AtLeastOnce)).Build(), Ct);
        return client;
    }

    private readonly List<(string Topic, string Payload)> _acks = [];

    private Task WaitForAckAsync(string serial, long seq) => Eventually.TrueAsync(() =>
    {
        lock (_acks)
        {
            return Task.FromResult(_acks.Any(a => a.Topic.EndsWith($"/pumps/{serial}/ack", StringComparison.Ordinal)
                && JsonDocument.Parse(a.Payload).RootElement.GetProperty("committedSeq").GetInt64() >= seq));
        }
    }, TimeSpan.FromSeconds(30), $"the ack of {serial} with committedSeq ≥ {seq}");

    private async Task PublishAsync(IMqttClient client, string serial, string payload, string traceparent)
    {
        var r = await client.PublishAsync(new MqttApplicationMessageBuilder().WithTopic($"pumpfleet/v1/hubs/{_hubId}/pumps/{serial}/events")
            .WithPayload(payload).WithQualityOfServiceLevel(MqttQualityOfServiceLevel.AtLeastOnce)
            .WithUserProperty("traceparent", (ReadOnlyMemory<byte>)Encoding.UTF8.GetBytes(traceparent)).Build(), Ct);
        Assert.True(r.IsSuccess, $"PUBACK {r.ReasonCode} {r.ReasonString}");
        _lastPacketId = r.PacketIdentifier ?? 0;
    }

    private int _lastPacketId;

    /// <summary>A projection that writes nothing: the page span around it is what the test reads.</summary>
    private sealed class ProbeProjection : IProjection
    {
        public const string ProbeName = "trace-probe";

        public string Name => ProbeName;

        public IReadOnlyList<string> Tables => [];

        public Task ApplyAsync(NpgsqlConnection conn, NpgsqlTransaction tx, IReadOnlyList<StoredEvent> events, CancellationToken ct) => Task.CompletedTask;
    }

    private static string FirstBatch()
    {
        var t0 = DateTimeOffset.UtcNow.AddHours(-3);
        static string T(DateTimeOffset t) => t.ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", CultureInfo.InvariantCulture);
        return $$"""
            {"v":1,"device":{"model":"SM2-20","firmware":"4.2.1","lot":"TR","reservoirCapacityMl":20},"events":[
              {"seq":1,"type":"prescription.set","at":"{{T(t0)}}","drug":"baclofen","concentration":{"value":2000,"unit":"mcg/mL"},"mode":"continuous","rateMlPerDay":0.5},
              {"seq":2,"type":"refill","at":"{{T(t0)}}","expectedResidualMl":0,"aspiratedResidualMl":0,"addedMl":18,"drug":"baclofen","concentration":{"value":2000,"unit":"mcg/mL"} },
              {"seq":3,"type":"dose.delivered","at":"{{T(t0.AddHours(1))}}","from":"{{T(t0)}}","volumeMl":0.0208,"kind":"basal"}]}
            """;
    }

    private static string SecondBatch()
    {
        var at = DateTimeOffset.UtcNow.AddHours(-1).ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", CultureInfo.InvariantCulture);
        var from = DateTimeOffset.UtcNow.AddHours(-2).ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", CultureInfo.InvariantCulture);
        return $$"""{"v":1,"events":[{"seq":4,"type":"dose.delivered","at":"{{at}}","from":"{{from}}","volumeMl":0.0208,"kind":"basal"}]}""";
    }

}
