using System.Reflection;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using Microsoft.Extensions.Time.Testing;
using PumpFleet.Dashboard.Caching;
using PumpFleet.Dashboard.Hosting;
using PumpFleet.Dashboard.Live;
using PumpFleet.ReadModels;
using PumpFleet.Streaming;
using PumpFleet.TestSupport;

namespace PumpFleet.Dashboard.Tests;

/// <summary>The live channel's cost is per process, not per browser; and which committed events it pushes.</summary>
public sealed class LiveFeedTests
{
    [Fact]
    public async Task ReadModelQueries_DoNotGrowWithTheNumberOfOpenBrowsers()
    {
        var ct = TestContext.Current.CancellationToken;
        var time = NewTime();
        var (feed, _, counter, metrics) = NewFeed(time, TimeSpan.FromSeconds(1));
        using var ownedMetrics = metrics;
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(ct);
        await feed.StartAsync(ct);
        try
        {
            // The loop's first round (no browser yet: it reads nothing) before the browsers, so that it is not counted
            // among their connections' reads.
            await Eventually.TrueAsync(() => Task.FromResult(feed.Ticks >= 1), TimeSpan.FromSeconds(10), "the first round");
            var browsers = Enumerable.Range(0, 50).Select(_ => feed.ConnectAsync(stop.Token).GetAsyncEnumerator(stop.Token)).ToList();
            foreach (var b in browsers)
            {
                Assert.True(await b.MoveNextAsync());
                Assert.Equal("fleet", b.Current.EventType);
            }

            Assert.Equal(50, feed.Browsers);
            var afterConnect = counter.Calls;
            var feedAfterConnect = feed.SummaryQueries;
            // Ten ticks, the read models change at each: every browser gets ten summaries, the database ten rounds.
            for (var tick = 1; tick <= 10; tick++)
            {
                counter.Change();
                var expected = afterConnect + 2 * tick;
                time.Advance(TimeSpan.FromSeconds(1));
                await Eventually.TrueAsync(() => Task.FromResult(counter.Calls >= expected), TimeSpan.FromSeconds(10), $"tick {tick} polled");
            }

            foreach (var b in browsers)
            {
                for (var i = 0; i < 10; i++)
                {
                    Assert.True(await b.MoveNextAsync());
                    Assert.Equal("fleet", b.Current.EventType);
                }
            }

            // Two queries per change (version, summary) for the whole process: 50 browsers cost what one does.
            Assert.Equal(afterConnect + 20, counter.Calls);
            Assert.Equal(feedAfterConnect + 20, feed.SummaryQueries);
            // The 50 connections cost one version reading and one summary, shared.
            Assert.Equal(2, afterConnect);
        }
        finally
        {
            await stop.CancelAsync();
            await feed.StopAsync(CancellationToken.None);
        }
    }

    [Fact]
    public async Task ABrowserConnecting_GetsAVersionReadingOfThatMoment_NotTheSharedOneThatMayBeOlder()
    {
        // Regression (CI, AlertsPage_AcknowledgingRemovesTheAnomalyFromTheOpenQueue): a page reloaded just after the read
        // models took a change re-read its list at the shared reading of before the change (up to
        // Dashboard:ReadCache:VersionMaxAge old), got the cached older answer, and kept it: pages apply pushes now, and
        // that change had been pushed before the page listened.
        var ct = TestContext.Current.CancellationToken;
        var time = NewTime();
        var (feed, versions, counter, metrics) = NewFeed(time, TimeSpan.FromMinutes(1));
        using var ownedMetrics = metrics;
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(ct);
        await feed.StartAsync(ct);
        try
        {
            await using var first = feed.ConnectAsync(stop.Token).GetAsyncEnumerator(stop.Token);
            Assert.True(await first.MoveNextAsync());
            var before = versions.Latest!.Version;

            // The read models change; a few milliseconds later (well within VersionMaxAge, no live tick) a page connects.
            counter.Change();
            time.Advance(TimeSpan.FromMilliseconds(5));
            await using var second = feed.ConnectAsync(stop.Token).GetAsyncEnumerator(stop.Token);
            Assert.True(await second.MoveNextAsync());

            // Its re-read, allowed a reading up to VersionMaxAge old, is answered at the version after the change.
            var seen = await versions.CurrentAsync(TimeSpan.FromMilliseconds(500), ct);
            Assert.NotEqual(before, seen.Version);
        }
        finally
        {
            await stop.CancelAsync();
            await feed.StopAsync(CancellationToken.None);
        }
    }

    [Fact]
    public async Task WithNoBrowserConnected_NoSummaryIsRead_AndABrowserConnectingLater_GetsTheCurrentOne()
    {
        // At a million pumps the summary's count by status reads the whole status table: a dashboard nobody has open must
        // not read it every LiveInterval. And a browser's first message is the summary of its moment: the fleet page
        // draws its status cards from it (before, it was the first summary the process ever read).
        var ct = TestContext.Current.CancellationToken;
        var time = NewTime();
        var (feed, _, counter, metrics) = NewFeed(time, TimeSpan.FromSeconds(1));
        using var ownedMetrics = metrics;
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(ct);
        await feed.StartAsync(ct);
        try
        {
            await using (var first = feed.ConnectAsync(stop.Token).GetAsyncEnumerator(stop.Token))
            {
                Assert.True(await first.MoveNextAsync());
                Assert.Equal("0", Assert.IsType<FleetSummary>(first.Current.Data).Version);
            }

            await Eventually.TrueAsync(() => Task.FromResult(feed.Browsers == 0), TimeSpan.FromSeconds(10), "the browser gone");
            // Five rounds of the loop, the read models changing before each: no summary read (nor a version reading).
            var (summaries, calls, ticks) = (counter.Summaries, counter.Calls, feed.Ticks);
            for (var tick = 1; tick <= 5; tick++)
            {
                counter.Change();
                time.Advance(TimeSpan.FromSeconds(1));
                await Eventually.TrueAsync(() => Task.FromResult(feed.Ticks >= ticks + tick), TimeSpan.FromSeconds(10), $"round {tick}");
            }

            Assert.Equal(summaries, counter.Summaries);
            Assert.Equal(calls, counter.Calls);

            await using var later = feed.ConnectAsync(stop.Token).GetAsyncEnumerator(stop.Token);
            Assert.True(await later.MoveNextAsync());
            Assert.Equal("5", Assert.IsType<FleetSummary>(later.Current.Data).Version);
            Assert.Equal(summaries + 1, counter.Summaries);
        }
        finally
        {
            await stop.CancelAsync();
            await feed.StopAsync(CancellationToken.None);
        }
    }

    [Theory]
    [InlineData("anomaly.detected", """{"at":"2026-11-30T00:00:00Z","anomalyId":"SN1:silent:5","kind":"silent","severity":"warning","summary":"quiet","evidence":{}}""", "anomaly")]
    [InlineData("anomaly.acknowledged", """{"at":"2026-11-30T00:00:00Z","anomalyId":"SN1:silent:5","by":"ana","note":"called"}""", "anomaly")]
    [InlineData("anomaly.resolved", """{"at":"2026-11-30T00:00:00Z","anomalyId":"SN1:silent:5","by":"system","automatic":true}""", "anomaly")]
    [InlineData("alarm.raised", """{"seq":3,"at":"2026-11-30T00:00:00Z","code":"X","severity":"critical"}""", "pump")]
    [InlineData("dose.delivered", """{"seq":3,"at":"2026-11-30T00:00:00Z","volumeMl":0.1}""", null)]
    public void CommittedEvents_BecomeTheRightBrowserMessage(string type, string data, string? expected)
    {
        var e = new CommittedEvent("SN1", 5, Guid.NewGuid(), type, null, null, DateTimeOffset.UtcNow, false, data, null, 1, 1);
        var message = LiveFeed.ToMessage(e);
        Assert.Equal(expected, message?.EventType);
        if (message?.Data is LiveAnomaly a)
        {
            Assert.Equal("SN1:silent:5", a.Id);
            Assert.Equal("SN1", a.Serial);
            Assert.Equal(type.Split('.')[1] switch { "detected" => "open", var s => s }, a.Status);
        }
    }

    [Fact]
    public void TheLiveStreamsTypes_AreExactlyTheOnesTheFeedPushes()
    {
        // The feed subscribes to the live streams only, so a type it pushes but the streams do not carry would never
        // reach a browser; a type the streams carry but the feed drops costs deliveries for nothing.
        var anomalyData = new Dictionary<string, string>
        {
            ["anomaly.detected"] = """{"at":"2026-11-30T00:00:00Z","anomalyId":"SN1:silent:5","kind":"silent","severity":"warning","summary":"quiet","evidence":{}}""",
            ["anomaly.acknowledged"] = """{"at":"2026-11-30T00:00:00Z","anomalyId":"SN1:silent:5","by":"ana","note":"called"}""",
            ["anomaly.resolved"] = """{"at":"2026-11-30T00:00:00Z","anomalyId":"SN1:silent:5","by":"system","automatic":true}""",
        };
        foreach (var type in LogStreams.LiveTypes)
        {
            var e = new CommittedEvent("SN1", 5, Guid.NewGuid(), type, null, null, DateTimeOffset.UtcNow, false,
                anomalyData.GetValueOrDefault(type, "{}"), null, 1, 1);
            Assert.True(LiveFeed.ToMessage(e) is not null, $"{type} is on the live streams but the feed pushes nothing for it");
        }

        foreach (var type in new[] { "dose.delivered", "dose.bolus", "test.event", "cohort.signal", "pump.implanted" })
        {
            Assert.False(LogStreams.IsLive(type));
            var e = new CommittedEvent("SN1", 5, Guid.NewGuid(), type, null, null, DateTimeOffset.UtcNow, false, "{}", null, 1, 1);
            Assert.Null(LiveFeed.ToMessage(e));
        }
    }

    private const string Detected = """{"at":"2026-11-30T00:00:00Z","anomalyId":"SN1:silent:5","kind":"silent","severity":"warning","summary":"quiet","evidence":{}}""";

    private static CommittedEvent AnomalyEvent() =>
        new("SN1", 5, Guid.NewGuid(), "anomaly.detected", null, null, DateTimeOffset.UtcNow, false, Detected, null, 1, 1);

    private static FakeTimeProvider NewTime() =>
        new(DateTimeOffset.Parse("2026-11-30T00:00:00Z", System.Globalization.CultureInfo.InvariantCulture));

    // A feed (not started) over counting fake queries; the caller disposes the metrics provider.
    private static (LiveFeed Feed, ReadModelVersion Versions, CountingQueries Counter, ServiceProvider Metrics) NewFeed(FakeTimeProvider time, TimeSpan liveInterval)
    {
        var queries = CountingQueries.Create();
        var metrics = new ServiceCollection().AddMetrics().BuildServiceProvider();
        var versions = new ReadModelVersion(queries, time, new ReadCacheMetrics(metrics.GetRequiredService<System.Diagnostics.Metrics.IMeterFactory>()));
        var feed = new LiveFeed(new ServiceCollection().BuildServiceProvider(), queries, versions,
            Options.Create(new DashboardOptions { LiveInterval = liveInterval }), time, NullLogger<LiveFeed>.Instance);
        return (feed, versions, (CountingQueries)(object)queries, metrics);
    }

    // A started feed with fake queries and a fake clock; the caller stops it.
    private static async Task<(LiveFeed Feed, FakeTimeProvider Time, ServiceProvider Metrics)> StartFeedAsync(bool liveTimings, CancellationToken ct)
    {
        var time = new FakeTimeProvider(DateTimeOffset.Parse("2026-11-30T00:00:00Z", System.Globalization.CultureInfo.InvariantCulture));
        var queries = CountingQueries.Create();
        var metrics = new ServiceCollection().AddMetrics().BuildServiceProvider();
        var versions = new ReadModelVersion(queries, time, new ReadCacheMetrics(metrics.GetRequiredService<System.Diagnostics.Metrics.IMeterFactory>()));
        var feed = new LiveFeed(new ServiceCollection().BuildServiceProvider(), queries, versions,
            Options.Create(new DashboardOptions { LiveInterval = TimeSpan.FromSeconds(1), LiveTimings = liveTimings }), time, NullLogger<LiveFeed>.Instance);
        await feed.StartAsync(ct);
        return (feed, time, metrics);
    }

    [Fact]
    public async Task ABrowserThatFallsTooFarBehind_GetsWhatWasQueued_ThenItsStreamEnds_WhileOthersKeepTheirs()
    {
        var ct = TestContext.Current.CancellationToken;
        var (feed, _, metrics) = await StartFeedAsync(liveTimings: false, ct);
        using var _ = metrics;
        try
        {
            await using var slow = feed.ConnectAsync(ct).GetAsyncEnumerator(ct);
            await using var fast = feed.ConnectAsync(ct).GetAsyncEnumerator(ct);
            Assert.True(await slow.MoveNextAsync());
            Assert.True(await fast.MoveNextAsync());

            // One message more than a browser may have waiting: the page would never apply the one dropped, so the
            // slow browser's stream ends after what it has (it reconnects and re-reads); the fast one reads along.
            // (A browser that connected just before the feed's first tick may also hold a second summary: counted as a
            // queued message, skipped by the fast reader.)
            for (var i = 0; i <= LiveFeed.BrowserQueue; i++)
            {
                await feed.OnNextAsync(AnomalyEvent());
                Assert.Equal("anomaly", await NextPushAsync(fast));
            }

            var queued = 0;
            while (await slow.MoveNextAsync())
            {
                queued++;
            }

            Assert.Equal(LiveFeed.BrowserQueue, queued);
            Assert.Equal(1, feed.Browsers);
            await feed.OnNextAsync(AnomalyEvent());
            Assert.Equal("anomaly", await NextPushAsync(fast));
        }
        finally
        {
            await feed.StopAsync(CancellationToken.None);
        }
    }

    private static async Task<string?> NextPushAsync(IAsyncEnumerator<System.Net.ServerSentEvents.SseItem<object>> browser)
    {
        while (await browser.MoveNextAsync())
        {
            if (browser.Current.EventType != "fleet")
            {
                return browser.Current.EventType;
            }
        }

        return null;
    }

    [Fact]
    public async Task EndBrowserStreams_EndsEveryOpenStream()
    {
        var ct = TestContext.Current.CancellationToken;
        var (feed, _, metrics) = await StartFeedAsync(liveTimings: false, ct);
        using var _ = metrics;
        try
        {
            await using var a = feed.ConnectAsync(ct).GetAsyncEnumerator(ct);
            await using var b = feed.ConnectAsync(ct).GetAsyncEnumerator(ct);
            Assert.True(await a.MoveNextAsync());
            Assert.True(await b.MoveNextAsync());
            await feed.OnNextAsync(AnomalyEvent());
            Assert.Equal(2, feed.EndBrowserStreams());
            // What was queued is still written, then the stream ends.
            Assert.Equal("anomaly", await NextPushAsync(a));
            Assert.Null(await NextPushAsync(a));
            Assert.Equal("anomaly", await NextPushAsync(b));
            Assert.Null(await NextPushAsync(b));
            Assert.Equal(0, feed.Browsers);
        }
        finally
        {
            await feed.StopAsync(CancellationToken.None);
        }
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task LiveTimings_StampTheQueueRead_TheFeed_AndEachBrowsersWrite_OnlyWhenOn(bool on)
    {
        var ct = TestContext.Current.CancellationToken;
        var (feed, time, metrics) = await StartFeedAsync(on, ct);
        using var _ = metrics;
        try
        {
            await using var browser = feed.ConnectAsync(ct).GetAsyncEnumerator(ct);
            Assert.True(await browser.MoveNextAsync());
            var t0 = time.GetUtcNow().ToUnixTimeMilliseconds();
            // What the pulling agent's delivery carries (LogBatchContainer.ImportRequestContext).
            RequestContext.Set(LogStreams.PreviousReadStartedKey, t0 - 80);
            RequestContext.Set(LogStreams.ReadStartedKey, t0 - 30);
            RequestContext.Set(LogStreams.ReadKey, t0 - 20);
            try
            {
                await feed.OnNextAsync(AnomalyEvent());
            }
            finally
            {
                RequestContext.Clear();
            }

            time.Advance(TimeSpan.FromMilliseconds(7));
            Assert.Equal("anomaly", await NextPushAsync(browser));
            var message = Assert.IsType<LiveAnomaly>(browser.Current.Data);
            var json = System.Text.Json.JsonSerializer.Serialize(message, new System.Text.Json.JsonSerializerOptions(System.Text.Json.JsonSerializerDefaults.Web));
            if (!on)
            {
                Assert.Null(message.Trace);
                Assert.DoesNotContain("trace", json, StringComparison.Ordinal);
                return;
            }

            Assert.Equal(new LiveTrace(t0 - 80, t0 - 30, t0 - 20, t0, t0 + 7), message.Trace);
            Assert.Contains("\"trace\":{\"previousReadStartedMs\":", json, StringComparison.Ordinal);
        }
        finally
        {
            await feed.StopAsync(CancellationToken.None);
        }
    }

    [Fact]
    public void ALiveContainer_CarriesItsReadTimes_InTheDeliverysRequestContext()
    {
        var e = AnomalyEvent();
        var stamped = new LogBatchContainer(LogStreams.ForLive(0), [e], 2) { ReadStartedMs = 100, ReadMs = 120, PreviousReadStartedMs = 50 };
        try
        {
            Assert.True(stamped.ImportRequestContext());
            Assert.Equal(100L, RequestContext.Get(LogStreams.ReadStartedKey));
            Assert.Equal(120L, RequestContext.Get(LogStreams.ReadKey));
            Assert.Equal(50L, RequestContext.Get(LogStreams.PreviousReadStartedKey));
        }
        finally
        {
            RequestContext.Clear();
        }

        Assert.False(new LogBatchContainer(LogStreams.ForPartition(0), [e], 1).ImportRequestContext());
        Assert.Null(RequestContext.Get(LogStreams.ReadKey));
    }
}

/// <summary>A read-model query fake that counts the live channel's two queries and refuses every other.</summary>
public class CountingQueries : DispatchProxy
{
    private int _version;
    private long _calls;

    private long _summaries;

    public long Calls => Interlocked.Read(ref _calls);

    public long Summaries => Interlocked.Read(ref _summaries);

    public void Change() => Interlocked.Increment(ref _version);

    public static IReadModelQueries Create() => Create<IReadModelQueries, CountingQueries>();

    protected override object? Invoke(MethodInfo? targetMethod, object?[]? args)
    {
        switch (targetMethod?.Name)
        {
            case nameof(IReadModelQueries.VersionAsync):
                Interlocked.Increment(ref _calls);
                return Task.FromResult(Volatile.Read(ref _version).ToString(System.Globalization.CultureInfo.InvariantCulture));
            case nameof(IReadModelQueries.FleetSummaryAsync):
                Interlocked.Increment(ref _calls);
                // At the version of the moment, as the real one (which reads it in the same call).
                Interlocked.Increment(ref _summaries);
                return Task.FromResult(new FleetSummary(new Dictionary<string, long>(), 0, 0, 0,
                    Volatile.Read(ref _version).ToString(System.Globalization.CultureInfo.InvariantCulture)));
            default:
                throw new NotSupportedException(targetMethod?.Name);
        }
    }
}
