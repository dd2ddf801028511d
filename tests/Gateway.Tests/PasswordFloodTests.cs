using System.Collections.Concurrent;
using System.Diagnostics;
using System.Diagnostics.Metrics;
using System.Net;
using System.Net.Sockets;
using System.Text;
using Microsoft.Extensions.DependencyInjection;
using MQTTnet;
using PumpFleet.Gateway.Ingest;
using PumpFleet.Gateway.Tests.Infrastructure;
using PumpFleet.TestSupport;

namespace PumpFleet.Gateway.Tests;

/// <summary>
/// A wrong-password flood through the embedded broker: it exhausts the verification budget, so most of it is
/// refused before any registry read or PBKDF2, while a hub that proved itself earlier reconnects, even with its own
/// hub id under attack, and its batches are stored and acknowledged.
/// </summary>
public sealed class PasswordFloodTests(PostgresFixture pg, EmbeddedEnvironment env) : IClassFixture<EmbeddedEnvironment>, IAsyncLifetime
{
    private const double BudgetPerSecond = 1;
    private const double BudgetBurst = 2;
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(30);

    public async ValueTask InitializeAsync() => await env.EnsureStartedAsync(pg);

    public ValueTask DisposeAsync() => ValueTask.CompletedTask;

    [Fact]
    public async Task UnderAFloodThatExhaustsTheBudget_AProvenHubReconnectsAndIsAcknowledged_AndTheFloodIsRefusedCheaply()
    {
        await using var gw = await GatewayUnderTest.StartAsync(env.ConnectionString, env.Cluster.Grains, settings: new Dictionary<string, string?>
        {
            ["Gateway:Hubs:VerificationBudgetPerSecond"] = BudgetPerSecond.ToString(System.Globalization.CultureInfo.InvariantCulture),
            ["Gateway:Hubs:VerificationBudgetBurst"] = BudgetBurst.ToString(System.Globalization.CultureInfo.InvariantCulture),
        });
        using var throttled = new ThrottleCounter(gw);
        var hubId = $"hub-{Guid.NewGuid():N}"[..20];
        var serial = $"P-{Guid.NewGuid():N}"[..20];
        var secret = await gw.ProvisionAsync(hubId);
        await gw.Admin.PairAsync(hubId, serial, EventStore.Audit.AuditActor.System("test"), null, TestContext.Current.CancellationToken);
        var cold = $"cold-{Guid.NewGuid():N}"[..20];
        var coldSecret = await gw.ProvisionAsync(cold);

        // The hub proves itself once (PBKDF2), is served, and goes away.
        await using var hub = TestHub.Create(hubId);
        Assert.Equal(MqttClientConnectResultCode.Success, (await hub.ConnectAsync(gw.Port, secret)).ResultCode);
        Assert.True((await hub.PublishAsync(serial, Batches.Doses(1, 5))).IsSuccess);
        await hub.WaitForAckAsync(serial, 5);
        await hub.Client.DisconnectAsync(cancellationToken: TestContext.Current.CancellationToken);

        // The flood: wrong passwords for fresh hub ids from 200 loopback addresses, and every fifth one for the
        // hub's own id (which puts that id in the failed-login backoff).
        var flood = new Flood(gw.Port, hubId);
        using var stop = new CancellationTokenSource();
        var sw = Stopwatch.StartNew();
        var flooding = flood.RunAsync(workers: 8, stop.Token);
        try
        {
            await Eventually.TrueAsync(() => Task.FromResult(throttled.Of(LoginThrottleReasons.VerificationBudget) >= 20 && flood.OwnIdAttempts >= 5),
                Patience, "the flood to exhaust the budget and to have tried the hub's own id");

            // Still flooding: the proven hub reconnects with its secret at once and is served.
            Assert.Equal(MqttClientConnectResultCode.Success, (await hub.ConnectAsync(gw.Port, secret)).ResultCode);
            Assert.True((await hub.PublishAsync(serial, Batches.Doses(6, 10))).IsSuccess);
            await hub.WaitForAckAsync(serial, 10);
            Assert.True(flood.Attempts > 0 && !flooding.IsCompleted, "the flood was still running");
        }
        finally
        {
            await stop.CancelAsync();
            await flooding;
        }

        sw.Stop();
        // Each wrong password that reached the registry read (answered "bad user name or password") spent a token:
        // no more than the burst plus the refill over the whole flood, however many attempts were made.
        var checkedAttempts = flood.Codes.GetValueOrDefault(4);
        var allowed = BudgetBurst + (BudgetPerSecond * sw.Elapsed.TotalSeconds) + 1;
        Assert.True(checkedAttempts <= allowed,
            $"{checkedAttempts} wrong passwords were checked in {sw.Elapsed.TotalSeconds:F1} s, over the budget's {allowed:F1}; CONNACK codes: {flood.Summary}");
        Assert.True(flood.Codes.GetValueOrDefault(3) >= 20, $"most of the flood was answered ServerBusy: {flood.Summary}");

        // A hub that never proved itself at this gateway is served once the flood is over (the budget refills).
        await using var coldHub = TestHub.Create(cold);
        await Eventually.TrueAsync(async () => (await coldHub.ConnectAsync(gw.Port, coldSecret, subscribe: false)).ResultCode == MqttClientConnectResultCode.Success,
            Patience, "the cold hub to get in after the flood", TimeSpan.FromMilliseconds(500));
    }

    /// <summary>Raw MQTT 3.1.1 CONNECTs with wrong passwords, as fast as <c>workers</c> loops can make them; counts CONNACK codes.</summary>
    private sealed class Flood(int port, string ownId)
    {
        private long _attempts;
        private long _ownId;

        public ConcurrentDictionary<int, int> Codes { get; } = new();

        public long Attempts => Interlocked.Read(ref _attempts);

        public long OwnIdAttempts => Interlocked.Read(ref _ownId);

        public string Summary => string.Join(", ", Codes.OrderBy(kv => kv.Key).Select(kv => $"{kv.Key}: {kv.Value}"));

        public Task RunAsync(int workers, CancellationToken stop) =>
            Task.WhenAll(Enumerable.Range(0, workers).Select(w => Task.Run(async () =>
            {
                while (!stop.IsCancellationRequested)
                {
                    var n = Interlocked.Increment(ref _attempts);
                    var id = n % 5 == 0 ? ownId : $"flood-{Guid.NewGuid():N}"[..24];
                    if (id == ownId)
                    {
                        Interlocked.Increment(ref _ownId);
                    }

                    var code = await AttemptAsync(id, (int)(n % 200));
                    Codes.AddOrUpdate(code, 1, (_, c) => c + 1);
                }
            }, CancellationToken.None)));

        private async Task<int> AttemptAsync(string hubId, int address)
        {
            try
            {
                using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
                socket.Bind(new IPEndPoint(new IPAddress([127, 0, 2, (byte)(1 + address)]), 0));
                using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(15));
                await socket.ConnectAsync(new IPEndPoint(IPAddress.Loopback, port), timeout.Token);
                await socket.SendAsync(Connect(hubId, "wrong-" + Guid.NewGuid().ToString("N")), timeout.Token);
                var connack = new byte[4];
                var read = 0;
                while (read < 4)
                {
                    var got = await socket.ReceiveAsync(connack.AsMemory(read), timeout.Token);
                    if (got == 0)
                    {
                        break;
                    }

                    read += got;
                }

                return read == 4 ? connack[3] : -1;
            }
            catch (Exception e) when (e is SocketException or OperationCanceledException)
            {
                return -2;
            }
        }

        private static byte[] Connect(string clientId, string password)
        {
            static void Str(List<byte> b, string s)
            {
                var bytes = Encoding.UTF8.GetBytes(s);
                b.Add((byte)(bytes.Length >> 8));
                b.Add((byte)bytes.Length);
                b.AddRange(bytes);
            }

            var body = new List<byte>();
            Str(body, "MQTT");
            body.AddRange([4, 0xC2, 0, 60]); // MQTT 3.1.1; user name, password, clean session; keep-alive 60 s
            Str(body, clientId);
            Str(body, clientId);
            Str(body, password);
            return [0x10, (byte)body.Count, .. body]; // under 128 bytes: one length byte
        }
    }

    /// <summary>Counts <c>pumpfleet.gateway.logins.throttled</c> of one gateway, by reason.</summary>
    private sealed class ThrottleCounter : IDisposable
    {
        private readonly MeterListener _listener = new();
        private readonly ConcurrentDictionary<string, long> _byReason = new();

        public ThrottleCounter(GatewayUnderTest gw)
        {
            var factory = gw.Services.GetRequiredService<IMeterFactory>();
            _listener.InstrumentPublished = (instrument, listener) =>
            {
                if (instrument.Name == "pumpfleet.gateway.logins.throttled" && ReferenceEquals(instrument.Meter.Scope, factory))
                {
                    listener.EnableMeasurementEvents(instrument);
                }
            };
            _listener.SetMeasurementEventCallback<long>((_, value, tags, _) =>
            {
                foreach (var tag in tags)
                {
                    if (tag.Key == "reason" && tag.Value is string reason)
                    {
                        _byReason.AddOrUpdate(reason, value, (_, v) => v + value);
                    }
                }
            });
            _listener.Start();
        }

        public long Of(string reason) => _byReason.GetValueOrDefault(reason);

        public void Dispose() => _listener.Dispose();
    }
}
