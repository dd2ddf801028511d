using System.Diagnostics.Metrics;
using System.Net.Http.Json;
using System.Security.Claims;
using System.Text.Json.Nodes;
using Microsoft.Extensions.Options;
using Microsoft.Extensions.Time.Testing;
using PumpFleet.Contracts.Events;
using PumpFleet.Contracts.Json;
using PumpFleet.Dashboard.Caching;
using PumpFleet.Dashboard.Hosting;
using PumpFleet.EventStore;
using PumpFleet.ReadModels;
using PumpFleet.TestSupport;

namespace PumpFleet.Dashboard.Tests;

/// <summary>
/// The shared read cache of the API's list reads (<see cref="SharedReadCache"/>): a change is seen by the next read,
/// callers of different scopes never share an answer, and N readers at one version cost one query. The API tests run
/// against the shared app and its real PostgreSQL; the ordering tests use the version fake of <see cref="LiveFeedTests"/>.
/// </summary>
public sealed class ReadCacheTests(DashboardApp app) : IDisposable
{
    private readonly ServiceProvider _metrics = new ServiceCollection().AddMetrics().BuildServiceProvider();

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    public void Dispose() => _metrics.Dispose();

    /// <summary>
    /// The regression of the first attempt (a stale pump count on the fleet page): an anomaly opened after its list and
    /// the fleet summary were cached is in the very next reads once the version has been read again (what the live
    /// channel does before each push), and in every read within <see cref="ReadCacheOptions.VersionMaxAge"/> without it.
    /// The anomaly is on a fleet-level stream of its own, so no seeded pump changes; it is resolved at the end.
    /// </summary>
    [Fact]
    public async Task ACountCachedBeforeAChange_IsNotServedAfterIt_StaleCountRegression()
    {
        var versions = app.App.Services.GetRequiredService<ReadModelVersion>();
        var metrics = app.App.Services.GetRequiredService<ReadCacheMetrics>();
        var store = app.App.Services.GetRequiredService<IEventStore>();
        var stream = $"cohort:RC-{Guid.NewGuid():N}"[..30] + ":fw:lot";
        var list = $"/api/anomalies?status=open&serial={Uri.EscapeDataString(stream)}";

        Assert.Empty((await app.Http.GetFromJsonAsync<JsonArray>(list, Ct))!);
        var openBefore = (await app.Http.GetFromJsonAsync<JsonObject>("/api/fleet/summary", Ct))!["openAnomalies"]!.GetValue<long>();
        Assert.Empty((await app.Http.GetFromJsonAsync<JsonArray>(list, Ct))!);
        Assert.True(metrics.Misses > 0, "the list went through the cache");

        var id = stream + ":a";
        await AppendAsync(store, stream, 0, "anomaly.detected", new AnomalyDetected
        {
            At = DateTimeOffset.UtcNow, AnomalyId = id, Kind = "flow-stall", Severity = "info", Summary = "read cache test",
            Evidence = new Dictionary<string, double>(),
        });
        await Eventually.TrueAsync(async () => await app.CountAsync($"SELECT count(*) FROM pf_anomalies WHERE id = '{id}'") == 1,
            TimeSpan.FromSeconds(30), "the anomaly projection committed the new anomaly");

        // What the live channel does before it pushes: read the version afresh. The next reads must see the change.
        await versions.CurrentAsync(TimeSpan.Zero, Ct);
        var after = (await app.Http.GetFromJsonAsync<JsonArray>(list, Ct))!;
        Assert.Equal(id, Assert.Single(after)!["id"]!.GetValue<string>());
        var openAfter = (await app.Http.GetFromJsonAsync<JsonObject>("/api/fleet/summary", Ct))!["openAnomalies"]!.GetValue<long>();
        Assert.True(openAfter > openBefore, $"open anomalies {openAfter} after the change, {openBefore} before");

        // Without a fresh reading: within VersionMaxAge every read sees the resolution.
        await AppendAsync(store, stream, 1, "anomaly.resolved", new AnomalyResolved { At = DateTimeOffset.UtcNow, AnomalyId = id, By = "test" });
        await Eventually.TrueAsync(async () => (await app.Http.GetFromJsonAsync<JsonArray>(list, Ct))!.Count == 0,
            TimeSpan.FromSeconds(30), "the resolution reached the cached list");
    }

    /// <summary>
    /// The Surveillance page's reads (re-read on every push) go through the cache: at one version the second read of
    /// the cohorts and of the survival curves is answered without a query, with the same figures.
    /// </summary>
    [Fact]
    public async Task CohortAndSurvivalReads_AtOneVersion_AreAnsweredFromTheCache()
    {
        var versions = app.App.Services.GetRequiredService<ReadModelVersion>();
        var metrics = app.App.Services.GetRequiredService<ReadCacheMetrics>();
        foreach (var path in new[] { "/api/cohorts?by=drug&metric=anomalies", "/api/cohorts/survival?by=drug&endpoint=anomaly:flow-stall" })
        {
            // Read until two reads fall within one version (the projections of other tests' events may move it).
            await Eventually.TrueAsync(async () =>
            {
                var before = (await versions.CurrentAsync(TimeSpan.Zero, Ct)).Version;
                var (hits, misses) = (metrics.Hits, metrics.Misses);
                var first = await app.Http.GetStringAsync(path, Ct);
                var second = await app.Http.GetStringAsync(path, Ct);
                var after = (await versions.CurrentAsync(TimeSpan.Zero, Ct)).Version;
                if (before != after)
                {
                    return false;
                }

                Assert.Equal(first, second);
                Assert.True(metrics.Misses - misses <= 1, $"{path}: at most one query at one version");
                Assert.True(metrics.Hits - hits >= 1, $"{path}: the second read answered from the cache");
                return true;
            }, TimeSpan.FromSeconds(30), $"two reads of {path} at one version");
        }
    }

    /// <summary>N concurrent readers of one query at one version: the database is asked once (the real query, real PostgreSQL).</summary>
    [Fact]
    public async Task ConcurrentReaders_AtOneVersion_RunOneQuery()
    {
        var queries = app.App.Services.GetRequiredService<IReadModelQueries>();
        var (cache, metrics) = NewCache(queries, TimeProvider.System, maxAge: TimeSpan.FromSeconds(10));
        var runs = 0;
        var release = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var key = ReadKey.For("anomalies", Viewer(), "all", null, null, null, 500);
        async Task<IReadOnlyList<AnomalyItem>> Query(CancellationToken ct)
        {
            Interlocked.Increment(ref runs);
            await release.Task.WaitAsync(ct);
            return await queries.ListAnomaliesAsync(null, null, null, null, 500, ct);
        }

        var readers = Enumerable.Range(0, 50).Select(_ => Task.Run(() => cache.GetAsync(key, Query, Ct), Ct)).ToList();
        await Eventually.TrueAsync(() => Task.FromResult(metrics.Hits + metrics.Misses == 50), TimeSpan.FromSeconds(10), "all 50 readers looked up");
        release.SetResult();
        var answers = await Task.WhenAll(readers);
        Assert.Equal(1, runs);
        Assert.Equal(1, metrics.Misses);
        Assert.Equal(49, metrics.Hits);
        Assert.All(answers, a => Assert.Same(answers[0], a));
        Assert.NotEmpty(answers[0]);
        Assert.Equal(1, metrics.VersionReads);

        // A reader after the query finished is answered from the cache as well.
        await cache.GetAsync(key, Query, Ct);
        Assert.Equal(1, runs);
    }

    /// <summary>Two roles (and a signed-out caller) never share an entry, even for the same query at the same version.</summary>
    [Fact]
    public async Task CallersOfDifferentScopes_NeverShareAnEntry()
    {
        var queries = app.App.Services.GetRequiredService<IReadModelQueries>();
        var (cache, metrics) = NewCache(queries, TimeProvider.System, maxAge: TimeSpan.FromSeconds(10));
        var runs = new List<string>();
        Func<CancellationToken, Task<string>> As(string who) => _ =>
        {
            lock (runs)
            {
                runs.Add(who);
            }

            return Task.FromResult(who);
        };

        Assert.Equal("viewer", await cache.GetAsync(ReadKey.For("alarms", Viewer(), "true", "critical", 500), As("viewer"), Ct));
        Assert.Equal("analyst", await cache.GetAsync(ReadKey.For("alarms", User("analyst", "viewer"), "true", "critical", 500), As("analyst"), Ct));
        Assert.Equal("anonymous", await cache.GetAsync(ReadKey.For("alarms", new ClaimsPrincipal(new ClaimsIdentity()), "true", "critical", 500), As("anonymous"), Ct));
        // Same scopes again (roles in another order): answered from their own entries.
        Assert.Equal("viewer", await cache.GetAsync(ReadKey.For("alarms", Viewer(), "true", "critical", 500), As("viewer-again"), Ct));
        Assert.Equal("analyst", await cache.GetAsync(ReadKey.For("alarms", User("viewer", "analyst"), "true", "critical", 500), As("analyst-again"), Ct));
        Assert.Equal(new[] { "viewer", "analyst", "anonymous" }, runs);
        Assert.Equal(3, metrics.Misses);
        Assert.Equal(2, metrics.Hits);
    }

    /// <summary>Every query parameter is in the key, and no two different parameter lists make the same key.</summary>
    [Fact]
    public void Keys_CoverEveryParameter_Unambiguously()
    {
        var viewer = Viewer();
        Assert.Equal(ReadKey.For("pumps", viewer, "ok", null, 2, 50), ReadKey.For("pumps", viewer, "ok", null, 2, 50));
        Assert.NotEqual(ReadKey.For("pumps", viewer, "ok", null, 2, 50), ReadKey.For("pumps", viewer, "ok", null, 3, 50));
        Assert.NotEqual(ReadKey.For("pumps", viewer, "a;1:b", null), ReadKey.For("pumps", viewer, "a", "b"));
        Assert.NotEqual(ReadKey.For("pumps", viewer, null, "x"), ReadKey.For("pumps", viewer, "x", null));
        Assert.NotEqual(ReadKey.For("pumps", viewer, ""), ReadKey.For("pumps", viewer, (object?)null));
        Assert.NotEqual(ReadKey.For("cohorts", viewer, new[] { "H1", "H2" }), ReadKey.For("cohorts", viewer, new[] { "H1" }));
        Assert.NotEqual(ReadKey.For("pumps", viewer, "ok"), ReadKey.For("anomalies", viewer, "ok"));
    }

    /// <summary>
    /// The key's version is read before the query: a change committed while the query runs is stored under the
    /// version read before it (so a reader at the new version asks again), never under the new one.
    /// </summary>
    [Fact]
    public async Task AChangeDuringTheQuery_IsNotStoredUnderTheNewVersion()
    {
        var time = new FakeTimeProvider(DateTimeOffset.Parse("2026-11-30T00:00:00Z", System.Globalization.CultureInfo.InvariantCulture));
        var queries = CountingQueries.Create();
        var fake = (CountingQueries)(object)queries;
        var (cache, metrics) = NewCache(queries, time, maxAge: TimeSpan.Zero);
        var key = ReadKey.For("summary", Viewer());
        var answer = 0;

        // The read models change while the first query runs; it answers with what it read before the change.
        var first = await cache.GetAsync(key, _ =>
        {
            fake.Change();
            return Task.FromResult($"answer {++answer}");
        }, Ct);
        Assert.Equal("answer 1", first);

        // The next caller reads the version afresh, finds it moved and asks again.
        time.Advance(TimeSpan.FromMilliseconds(1));
        Assert.Equal("answer 2", await cache.GetAsync(key, _ => Task.FromResult($"answer {++answer}"), Ct));
        // Nothing changed since: a hit.
        time.Advance(TimeSpan.FromMilliseconds(1));
        Assert.Equal("answer 2", await cache.GetAsync(key, _ => Task.FromResult($"answer {++answer}"), Ct));
        Assert.Equal(2, metrics.Misses);
        Assert.Equal(1, metrics.Hits);
    }

    /// <summary>Readings within VersionMaxAge are shared (one version query for many reads); an older one is read again.</summary>
    [Fact]
    public async Task TheVersion_IsReadOncePerMaxAge_ForAnyNumberOfReads()
    {
        var time = new FakeTimeProvider(DateTimeOffset.Parse("2026-11-30T00:00:00Z", System.Globalization.CultureInfo.InvariantCulture));
        var queries = CountingQueries.Create();
        var (cache, metrics) = NewCache(queries, time, maxAge: TimeSpan.FromMilliseconds(500));
        for (var i = 0; i < 100; i++)
        {
            await cache.GetAsync(ReadKey.For("pumps", Viewer(), i % 3), _ => Task.FromResult("x"), Ct);
            time.Advance(TimeSpan.FromMilliseconds(4));
        }

        // 100 reads over 400 ms: one version reading.
        Assert.Equal(1, metrics.VersionReads);
        time.Advance(TimeSpan.FromMilliseconds(200));
        await cache.GetAsync(ReadKey.For("pumps", Viewer(), 0), _ => Task.FromResult("x"), Ct);
        Assert.Equal(2, metrics.VersionReads);
    }

    /// <summary>A failed query is not kept; switched off, every read queries; full, reads bypass the cache.</summary>
    [Fact]
    public async Task Failures_AreNotKept_AndTheCacheCanBeSwitchedOff()
    {
        var time = new FakeTimeProvider();
        var queries = CountingQueries.Create();
        var (cache, metrics) = NewCache(queries, time, maxAge: TimeSpan.FromSeconds(10));
        var key = ReadKey.For("alarms", Viewer(), "true", null, 500);
        await Assert.ThrowsAsync<InvalidOperationException>(() => cache.GetAsync<string>(key, _ => throw new InvalidOperationException("database away"), Ct));
        Assert.Equal("ok", await cache.GetAsync(key, _ => Task.FromResult("ok"), Ct));
        Assert.Equal(2, metrics.Misses);

        var (off, offMetrics) = NewCache(queries, time, maxAge: TimeSpan.FromSeconds(10), enabled: false);
        var runs = 0;
        for (var i = 0; i < 3; i++)
        {
            await off.GetAsync(key, _ => Task.FromResult($"{++runs}"), Ct);
        }

        Assert.Equal(3, runs);
        Assert.Equal(3, offMetrics.Bypasses);
        Assert.Equal(0, offMetrics.VersionReads);

        var (small, smallMetrics) = NewCache(queries, time, maxAge: TimeSpan.FromSeconds(10), maxEntries: 10);
        for (var i = 0; i < 12; i++)
        {
            await small.GetAsync(ReadKey.For("pumps", Viewer(), i), _ => Task.FromResult("x"), Ct);
        }

        Assert.Equal(10, smallMetrics.Misses);
        Assert.Equal(2, smallMetrics.Bypasses);
    }

    private (SharedReadCache Cache, ReadCacheMetrics Metrics) NewCache(
        IReadModelQueries queries, TimeProvider time, TimeSpan maxAge, bool enabled = true, int maxEntries = 2000)
    {
        // Metrics of this cache only: a meter factory of its own (a listener on the process would see every test's).
        var metrics = new ReadCacheMetrics(_metrics.GetRequiredService<IMeterFactory>());
        var options = Options.Create(new DashboardOptions { ReadCache = new ReadCacheOptions { Enabled = enabled, VersionMaxAge = maxAge, MaxEntries = maxEntries } });
        var cache = new SharedReadCache(new ReadModelVersion(queries, time, metrics), options, metrics, time, app.App.Services.GetRequiredService<IHostApplicationLifetime>());
        return (cache, metrics);
    }

    private static ClaimsPrincipal Viewer() => User("viewer");

    private static ClaimsPrincipal User(params string[] roles) =>
        new(new ClaimsIdentity([new Claim(ClaimTypes.Name, "u"), .. roles.Select(r => new Claim(ClaimTypes.Role, r))], "test"));

    private static Task AppendAsync(IEventStore store, string stream, long expected, string type, PumpEvent e) =>
        store.AppendAsync(stream, expected, [new EventToAppend(Guid.NewGuid(), type, EventJson.Serialize(e), null, null, DateTimeOffset.UtcNow)], Ct);
}
