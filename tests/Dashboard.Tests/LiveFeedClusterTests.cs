using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net.ServerSentEvents;
using System.Runtime.CompilerServices;
using System.Text.Json;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Npgsql;
using PumpFleet.Clustering;
using PumpFleet.Contracts.Events;
using PumpFleet.Contracts.Json;
using PumpFleet.Dashboard.Hosting;
using PumpFleet.Dashboard.Live;
using PumpFleet.EventStore;
using PumpFleet.Gateway.Hosting;
using PumpFleet.ReadModels;
using PumpFleet.Streaming;
using PumpFleet.TestSupport;

namespace PumpFleet.Dashboard.Tests;

/// <summary>
/// The live channel of a stand-alone dashboard (an Orleans client, as <c>src/Dashboard.Host</c> runs it) on a
/// multi-silo cluster with the persistent pub-sub store: an SSE client that reconnects as a browser's EventSource does
/// is connected while every silo is killed and new ones start, and gets the next anomaly pushed within a bound. When the
/// feed had to make a subscription again (events committed meanwhile never reached it), it ends the open streams so
/// the browsers reconnect and re-read: the client must have been made to reconnect then, not left on a stream with a gap.
/// </summary>
public sealed class LiveFeedClusterTests(DashboardApp shared)
{
    // Well below LiveFeed's 5-minute safety-net check: passing within it shows the connection-change path works.
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(120);

    [Fact]
    public async Task AfterEverySiloWasKilled_AnOpenEventStream_GetsTheNextAnomalyPushed()
    {
        var ct = TestContext.Current.CancellationToken;
        var cs = await shared.Postgres.CreateDatabaseAsync("lfc", typeof(PumpProjection).Assembly, typeof(HubAdminApi).Assembly,
            typeof(PubSubStoreHostingExtensions).Assembly);
        var configuration = new ConfigurationBuilder().Build();
        await using var cluster = await PumpCluster.StartAsync(cs, silos: 2,
            configure: services =>
            {
                services.Configure<LogStreamOptions>(o =>
                {
                    o.PollInterval = TimeSpan.FromMilliseconds(500);
                    o.CheckpointInterval = TimeSpan.FromMilliseconds(200);
                });
                // The cohort tally grains are implicit subscribers of the partition streams in every silo.
                services.AddPumpFleetReadModels();
            },
            configureSilo: silo =>
            {
                silo.AddPumpFleetPubSubStore(cs);
                silo.AddPumpFleetLogStreams(configuration);
            },
            configureClient: client => client.AddPumpFleetLogStreams());
        await using var dashboard = await StartDashboardAsync(cs, cluster.Cluster.Client);
        var feed = dashboard.Services.GetRequiredService<LiveFeed>();
        var baseAddress = dashboard.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
        using var http = new HttpClient { BaseAddress = new Uri(baseAddress), Timeout = Timeout.InfiniteTimeSpan };
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(ct);
        var pushed = new ConcurrentDictionary<string, byte>(StringComparer.Ordinal);
        var connections = new StrongBox<int>();
        var reading = ReadAnomaliesAsync(http, pushed, connections, stop.Token);
        await using var ds = NpgsqlDataSource.Create(cs);
        var probe = new Probe(new NpgsqlEventStore(ds), $"LFC{Guid.NewGuid():N}"[..16].ToUpperInvariant());

        await Eventually.TrueAsync(() => Task.FromResult(feed.Subscribed && feed.Browsers == 1), TimeSpan.FromSeconds(60),
            "the feed subscribed and the event stream connected");
        var before = await probe.OpenAsync(ct);
        await Eventually.TrueAsync(() => Task.FromResult(pushed.ContainsKey(before)), TimeSpan.FromSeconds(60), "an anomaly pushed before the restart");

        await cluster.KillAllSilosAsync();
        await cluster.StartSiloAsync();
        await cluster.StartSiloAsync();

        // A new anomaly every second from the restart on: the new silos' pulling agents deliver them while the client
        // may not have found the new gateways yet, which is what removes a client's subscriptions.
        var restarted = Stopwatch.StartNew();
        var after = new List<string>();
        while (!after.Any(pushed.ContainsKey))
        {
            Assert.True(restarted.Elapsed < Bound,
                $"No anomaly appended after the restart reached the open event stream within {Bound} ({after.Count} appended, " +
                $"{feed.Resubscribed} subscriptions made again).");
            try
            {
                after.Add(await probe.OpenAsync(ct));
            }
            catch (NpgsqlException)
            {
                // Not expected (PostgreSQL stays up), but never a reason to stop probing.
            }

            await Task.Delay(TimeSpan.FromSeconds(1), ct);
        }

        TestContext.Current.TestOutputHelper?.WriteLine(
            $"pushed {restarted.Elapsed.TotalSeconds:F1} s after the restart; {feed.Resubscribed} partition subscriptions were gone and made again");
        Assert.False(reading.IsCompleted, "the client stopped reading the live channel");
        if (feed.Resubscribed > 0)
        {
            Assert.True(Volatile.Read(ref connections.Value) >= 2,
                $"{feed.Resubscribed} subscription(s) were made again but the open event stream was not ended (connections: {connections.Value})");
        }

        await stop.CancelAsync();
        try
        {
            await reading;
        }
        catch (Exception e) when (e is OperationCanceledException or IOException)
        {
            // The test ended the stream.
        }
    }

    // The dashboard composed as src/Dashboard.Host composes it, with the test cluster's client as its Orleans client.
    private static async Task<WebApplication> StartDashboardAsync(string cs, IClusterClient client)
    {
        var builder = WebApplication.CreateBuilder(new WebApplicationOptions { EnvironmentName = "Development", ApplicationName = typeof(DashboardApp).Assembly.GetName().Name });
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        builder.Configuration.AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["ConnectionStrings:PumpFleet"] = cs,
            ["Dashboard:Auth:Mode"] = "Local",
            ["Dashboard:LiveInterval"] = "00:00:00.500",
            ["Logging:LogLevel:Default"] = "Warning",
            ["Logging:LogLevel:PumpFleet.Dashboard.Live"] = "Information",
        });
        builder.Services.AddSingleton(client);
        builder.Services.AddSingleton<IGrainFactory>(client);
        builder.AddPumpFleetDashboard();
        var app = builder.Build();
        app.MapPumpFleetDashboard();
        await app.StartAsync();
        return app;
    }

    // Reads the live channel as a browser's EventSource does: when the server ends the stream, connect again.
    private static async Task ReadAnomaliesAsync(HttpClient http, ConcurrentDictionary<string, byte> pushed, StrongBox<int> connections, CancellationToken ct)
    {
        while (!ct.IsCancellationRequested)
        {
            using var response = await http.GetAsync("/api/live", HttpCompletionOption.ResponseHeadersRead, ct);
            response.EnsureSuccessStatusCode();
            Interlocked.Increment(ref connections.Value);
            await using var body = await response.Content.ReadAsStreamAsync(ct);
            await foreach (var item in SseParser.Create(body).EnumerateAsync(ct))
            {
                if (item.EventType == "anomaly")
                {
                    using var json = JsonDocument.Parse(item.Data);
                    pushed.TryAdd(json.RootElement.GetProperty("id").GetString()!, 0);
                }
            }
        }
    }

    /// <summary>A pump stream only this test writes to; each call opens a new anomaly on it.</summary>
    private sealed class Probe(IEventStore store, string serial)
    {
        private long _version;

        public async Task<string> OpenAsync(CancellationToken ct)
        {
            var id = $"{serial}:probe:{_version}";
            var e = new AnomalyDetected
            {
                At = DateTimeOffset.UtcNow, AnomalyId = id, Kind = "flow-stall", Severity = "info", Summary = "live feed probe",
                Evidence = new Dictionary<string, double>(),
            };
            await store.AppendAsync(serial, _version, [new EventToAppend(Guid.NewGuid(), "anomaly.detected", EventJson.Serialize(e), null, null, DateTimeOffset.UtcNow)], ct);
            _version++;
            return id;
        }
    }
}
