using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Orleans.Streams;
using Orleans.Streams.Core;
using PumpFleet.EventStore;
using PumpFleet.EventStore.Log;
using PumpFleet.Streaming;

namespace PumpFleet.Bench.Stream;

/// <summary>
/// Delivery throughput (<c>--throughput N</c>): how fast the log stream hands a burst of N committed events to its
/// consumers, against the raw partitioned read of the same events in the same run. One silo, the production set of
/// consumers: two implicit partition-stream grains (what the cohort tallies are) and, in the second phase, one
/// explicit subscriber (what a dashboard process holds). Each phase appends N events as fast as 8 writers can (batches
/// of 50 on one pump, 256 pumps, 1 in 50 a status-changing event, the rest doses), then waits until every consumer
/// has them; a phase's rate is N over the time from the burst's first append to the consumer's last delivery.
/// </summary>
internal static class Throughput
{
    private const int Pumps = 256;
    private const int Batch = 50;
    private const int LiveEvery = 50;

    public static async Task<int> RunAsync(string cs, IEventStore store, int events, int rounds, Func<int> freePort)
    {
        var versions = new long[Pumps];
        var rows = new List<Row>();

        // Warm-up: every pump once, delivered, so every queue has a checkpoint and the consumers' grains exist.
        using (var warmHost = await StartAsync(cs, freePort, "warm"))
        {
            Counts.Expect(null);
            var warm = await BurstAsync(store, versions, Pumps, 1);
            await WaitAsync(() => Counts.Implicit("a") >= warm.Total && Counts.Implicit("b") >= warm.Total, TimeSpan.FromMinutes(2));
            await warmHost.StopAsync();
        }

        // Each phase: the burst is appended while no silo runs, so the whole burst waits in the log; then a silo starts
        // and its receivers resume from their checkpoints. A consumer's rate is the burst over the time from its first
        // delivery to its last, so neither the append rate nor the silo's start counts.
        foreach (var (round, withDashboard) in Enumerable.Range(1, rounds).SelectMany(r => new[] { (r, false), (r, true) }))
        {
            var phase = withDashboard ? "implicit + dashboard" : "implicit consumers only";
            var burst = await BurstAsync(store, versions, events, Batch);
            Counts.Expect(burst.All);
            var dashboard = new DashboardRecorder(burst.Live);
            using var host = await StartAsync(cs, freePort, $"{round}-{withDashboard}");
            var cpu = Process.GetCurrentProcess().TotalProcessorTime;
            var handles = new List<StreamSubscriptionHandle<CommittedEvent>>();
            if (withDashboard)
            {
                var provider = host.Services.GetRequiredService<IClusterClient>().GetStreamProvider(LogStreams.ProviderName);
                foreach (var id in DashboardStreams())
                {
                    // From the start of what the receivers hold: nothing of the burst is purged before every consumer has it.
                    handles.Add(await provider.GetStream<CommittedEvent>(id).SubscribeAsync(dashboard, LogSequenceToken.At(GlobalCheckpoint.Start)));
                }
            }

            await WaitAsync(() => Counts.Implicit("a") >= burst.Total && Counts.Implicit("b") >= burst.Total
                && (!withDashboard || dashboard.Count >= burst.Live.Count), TimeSpan.FromMinutes(10));
            // The process's CPU from the silo's start until every consumer had the burst (the appends came before).
            var cpuPerK = (Process.GetCurrentProcess().TotalProcessorTime - cpu).TotalMilliseconds * 1000 / burst.Total;
            rows.Add(new Row(round, phase, "tally grain A", burst.Total, Counts.Span("a"), Counts.Deliveries("a"), cpuPerK));
            rows.Add(new Row(round, phase, "tally grain B", burst.Total, Counts.Span("b"), Counts.Deliveries("b"), cpuPerK));
            if (withDashboard)
            {
                rows.Add(new Row(round, phase, $"dashboard (the {burst.Live.Count} status events of the burst)", burst.Total, dashboard.Span, dashboard.Deliveries, cpuPerK));
            }

            Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"round {round}, {phase}: A {Counts.Span("a").TotalSeconds:0.00} s, B {Counts.Span("b").TotalSeconds:0.00} s, CPU {cpuPerK:0.0} ms per 1,000 events"));

            foreach (var h in handles)
            {
                await h.UnsubscribeAsync();
            }

            await host.StopAsync();
        }

        // Baseline of the same run: the raw partitioned read of the whole log (warm-up and both bursts), partition after partition.
        var reader = (ILogPartitionReader)store;
        var raw = Stopwatch.StartNew();
        long read = 0;
        for (var p = 0; p < LogPartitioning.Count; p++)
        {
            var at = GlobalCheckpoint.Start;
            while (true)
            {
                var page = await reader.ReadPartitionAsync(p, at, 500);
                read += page.Events.Count;
                at = page.Next;
                if (page.Events.Count < 500)
                {
                    break;
                }
            }
        }

        var rawRate = read / raw.Elapsed.TotalSeconds;
        Console.WriteLine();
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"Raw partitioned read (16 partitions one after the other, pages of 500): {read:N0} events in {raw.Elapsed.TotalSeconds:0.00} s = {rawRate:N0} events/s"));
        Console.WriteLine();
        Console.WriteLine($"| phase | consumer | events in each burst | first → last delivery, median of {rounds} | events/s of the log delivered (median) | per queue (÷16) | vs raw read | deliveries (events handed to it, median) | process CPU per 1,000 events (median) |");
        Console.WriteLine("|---|---|---:|---:|---:|---:|---:|---:|---:|");
        foreach (var g in rows.GroupBy(r => (r.Phase, Consumer: r.Consumer)))
        {
            var span = Median(g.Select(r => r.Span.TotalSeconds));
            var rate = g.First().Total / span;
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"| {g.Key.Phase} | {g.Key.Consumer} | {g.First().Total:N0} | {span:0.00} s (rounds: {string.Join(", ", g.Select(r => r.Span.TotalSeconds.ToString("0.00", CultureInfo.InvariantCulture)))}) | {rate:N0} | {rate / LogPartitioning.Count:N0} | {rate / rawRate:P0} | {Median(g.Select(r => (double)r.Deliveries)):N0} | {Median(g.Select(r => r.CpuPerK)):0} ms |"));
        }

        return 0;
    }

    private sealed record Row(int Round, string Phase, string Consumer, int Total, TimeSpan Span, long Deliveries, double CpuPerK);

    private static double Median(IEnumerable<double> values)
    {
        var v = values.Order().ToArray();
        return v.Length % 2 == 1 ? v[v.Length / 2] : (v[(v.Length / 2) - 1] + v[v.Length / 2]) / 2;
    }

    private static async Task<IHost> StartAsync(string cs, Func<int> freePort, string name)
    {
        var builder = Host.CreateApplicationBuilder();
        builder.Logging.SetMinimumLevel(LogLevel.Warning);
        builder.Services.AddPumpFleetEventStore(cs);
        builder.UseOrleans(silo =>
        {
            silo.UseLocalhostClustering(freePort(), freePort(), serviceId: "bench", clusterId: $"bench-throughput-{name}");
            silo.AddPumpFleetLogStreams(builder.Configuration);
        });
        var host = builder.Build();
        await host.StartAsync();
        return host;
    }

    /// <summary>The streams a dashboard process subscribes to (its live streams; before they existed, the partition streams).</summary>
    private static IEnumerable<StreamId> DashboardStreams() => LogStreams.AllLive();

    private sealed record Burst(int Total, HashSet<Guid> All, HashSet<Guid> Live);

    private static async Task<Burst> BurstAsync(IEventStore store, long[] versions, int events, int batch, bool everyLive = false)
    {
        var live = new ConcurrentDictionary<Guid, byte>();
        var all = new ConcurrentDictionary<Guid, byte>();
        var appends = (events + batch - 1) / batch;
        var next = -1;
        var writers = Enumerable.Range(0, 8).Select(_ => Task.Run(async () =>
        {
            int i;
            while ((i = Interlocked.Increment(ref next)) < appends)
            {
                var pump = i % Pumps;
                var list = new List<EventToAppend>(batch);
                for (var k = 0; k < batch; k++)
                {
                    var id = Guid.NewGuid();
                    all[id] = 0;
                    var isLive = everyLive || (i * batch + k) % LiveEvery == 0;
                    if (isLive)
                    {
                        live[id] = 0;
                    }

                    list.Add(new EventToAppend(id, isLive ? "status" : "dose.delivered", "{}", null, null, DateTimeOffset.UtcNow));
                }

                // Appends to one pump are serialised by taking its version under a lock; writers work on different pumps.
                long expected;
                lock (versions)
                {
                    expected = versions[pump];
                    versions[pump] += batch;
                }

                await store.AppendAsync($"TP{pump:D4}", expected, list);
            }
        })).ToArray();
        await Task.WhenAll(writers);
        return new Burst(appends * batch, [.. all.Keys], [.. live.Keys]);
    }

    private static async Task WaitAsync(Func<bool> condition, TimeSpan timeout)
    {
        var sw = Stopwatch.StartNew();
        while (!condition())
        {
            if (sw.Elapsed > timeout)
            {
                throw new TimeoutException("not every event was delivered in time");
            }

            await Task.Delay(10);
        }
    }
}

/// <summary>Distinct events of the current burst, deliveries and first/last delivery times per implicit consumer kind (the silo is in this process).</summary>
internal static class Counts
{
    private static readonly ConcurrentDictionary<string, Tally> Tallies = new();
    private static volatile HashSet<Guid>? _expected;

    /// <summary>Counts only <paramref name="events"/> from now on (null: every event).</summary>
    public static void Expect(HashSet<Guid>? events)
    {
        Tallies.Clear();
        _expected = events;
    }

    public static void On(string kind, CommittedEvent e) => Tallies.GetOrAdd(kind, _ => new Tally()).On(e.EventId, _expected);

    public static long Implicit(string kind) => Tallies.TryGetValue(kind, out var t) ? t.Count : 0;

    public static long Deliveries(string kind) => Tallies.TryGetValue(kind, out var t) ? t.Deliveries : 0;

    public static TimeSpan Span(string kind) => Tallies.TryGetValue(kind, out var t) ? t.Span : TimeSpan.Zero;
}

/// <summary>One consumer's view of a burst: events of it seen (distinct), deliveries, first and last delivery.</summary>
internal sealed class Tally
{
    private readonly ConcurrentDictionary<Guid, byte> _seen = new();
    private long _deliveries;
    private long _first;
    private long _last;

    public long Count => _seen.Count;

    public long Deliveries => Interlocked.Read(ref _deliveries);

    public TimeSpan Span => Stopwatch.GetElapsedTime(Interlocked.Read(ref _first), Interlocked.Read(ref _last));

    public void On(Guid id, HashSet<Guid>? expected)
    {
        if (expected is not null && !expected.Contains(id))
        {
            return;
        }

        var now = Stopwatch.GetTimestamp();
        Interlocked.CompareExchange(ref _first, now, 0);
        Interlocked.Increment(ref _deliveries);
        if (_seen.TryAdd(id, 0))
        {
            Interlocked.Exchange(ref _last, now);
        }
    }
}

/// <summary>A grain interface for the bench's consumers (implicit subscriptions activate them; nothing calls it).</summary>
[Alias("pumpfleet.bench.tally")]
public interface IBenchTallyGrain : IGrainWithStringKey
{
    /// <summary>Does nothing.</summary>
    [Alias("ping")]
    Task PingAsync();
}

/// <summary>Stands for one cohort tally grain: implicitly subscribed to the partition streams.</summary>
[ImplicitStreamSubscription(LogStreams.PartitionNamespace)]
public sealed class BenchTallyA : Grain, IBenchTallyGrain, IStreamSubscriptionObserver, IAsyncObserver<CommittedEvent>
{
    public Task PingAsync() => Task.CompletedTask;

    public async Task OnSubscribed(IStreamSubscriptionHandleFactory handleFactory) => await handleFactory.Create<CommittedEvent>().ResumeAsync(this);

    public Task OnNextAsync(CommittedEvent item, StreamSequenceToken? token = null)
    {
        Counts.On("a", item);
        return Task.CompletedTask;
    }

    public Task OnCompletedAsync() => Task.CompletedTask;

    public Task OnErrorAsync(Exception ex) => Task.CompletedTask;
}

/// <summary>Stands for the other cohort tally grain.</summary>
[ImplicitStreamSubscription(LogStreams.PartitionNamespace)]
public sealed class BenchTallyB : Grain, IBenchTallyGrain, IStreamSubscriptionObserver, IAsyncObserver<CommittedEvent>
{
    public Task PingAsync() => Task.CompletedTask;

    public async Task OnSubscribed(IStreamSubscriptionHandleFactory handleFactory) => await handleFactory.Create<CommittedEvent>().ResumeAsync(this);

    public Task OnNextAsync(CommittedEvent item, StreamSequenceToken? token = null)
    {
        Counts.On("b", item);
        return Task.CompletedTask;
    }

    public Task OnCompletedAsync() => Task.CompletedTask;

    public Task OnErrorAsync(Exception ex) => Task.CompletedTask;
}

/// <summary>What the dashboard's subscription was handed: the burst's status events are what it waits for.</summary>
internal sealed class DashboardRecorder(HashSet<Guid> live) : IAsyncObserver<CommittedEvent>
{
    private readonly Tally _tally = new();
    private long _handed;

    public long Count => _tally.Count;

    /// <summary>Every event handed to it (the status events it waits for and anything else).</summary>
    public long Deliveries => Interlocked.Read(ref _handed);

    public TimeSpan Span => _tally.Span;

    public Task OnNextAsync(CommittedEvent item, StreamSequenceToken? token = null)
    {
        Interlocked.Increment(ref _handed);
        _tally.On(item.EventId, live);
        return Task.CompletedTask;
    }

    public Task OnCompletedAsync() => Task.CompletedTask;

    public Task OnErrorAsync(Exception ex) => Task.CompletedTask;
}
