using System.Collections.Concurrent;
using Microsoft.Extensions.Options;
using PumpFleet.Dashboard.Hosting;

namespace PumpFleet.Dashboard.Caching;

/// <summary>
/// Answers of the API's list and summary reads, shared by every caller of this process and computed at most once per
/// read-model version, per query and per caller scope (<see cref="ReadKey"/>). What makes that safe:
/// <list type="bullet">
/// <item>The key's version is read <b>before</b> the query runs, so an answer is at least as new as the version it is
/// stored under (a change committed during the query makes the answer newer, never older).</item>
/// <item>Every table the cached reads touch is a projection's read model, and a projection writes its rows and its
/// progress row (the version's source, Projections' <c>ProjectionProgressStore</c>) in one transaction; what the reads need beyond
/// the read models (a clinic's hubs, from the hub registry) is resolved per request and is part of the key.</item>
/// <item>Answers are kept for one version at a time (a generation): a newer version starts an empty one, and a caller
/// holding an older reading than the generation's is answered without the cache and stores nothing.</item>
/// <item>A failed query is not kept: the callers waiting for it see the error, the next one asks again.</item>
/// </list>
/// Bounded: at most <see cref="ReadCacheOptions.MaxEntries"/> answers (beyond that, reads bypass the cache) and a
/// generation is dropped after <see cref="ReadCacheOptions.Expiry"/>. Off with <c>Dashboard:ReadCache:Enabled=false</c>.
/// </summary>
public sealed class SharedReadCache
{
    private readonly ReadModelVersion _versions;
    private readonly IOptions<DashboardOptions> _options;
    private readonly ReadCacheMetrics _metrics;
    private readonly TimeProvider _time;
    private readonly CancellationToken _stopping;
    private readonly Lock _gate = new();
    private Generation? _current;

    /// <summary>Creates the cache of this process.</summary>
    public SharedReadCache(ReadModelVersion versions, IOptions<DashboardOptions> options, ReadCacheMetrics metrics, TimeProvider time, IHostApplicationLifetime lifetime)
    {
        ArgumentNullException.ThrowIfNull(metrics);
        ArgumentNullException.ThrowIfNull(lifetime);
        _versions = versions;
        _options = options;
        _metrics = metrics;
        _time = time;
        _stopping = lifetime.ApplicationStopping;
        metrics.Entries = () => Volatile.Read(ref _current)?.Entries.Count ?? 0;
    }

    /// <summary>The version the held answers are for, or null.</summary>
    public string? Version => Volatile.Read(ref _current)?.Observed.Version;

    /// <summary>
    /// The answer of <paramref name="query"/> for <paramref name="key"/> at the read models' current version: the
    /// shared one when there is one (or one in flight), otherwise this call runs the query and shares it.
    /// </summary>
    public async Task<T> GetAsync<T>(ReadKey key, Func<CancellationToken, Task<T>> query, CancellationToken ct)
        where T : class
    {
        ArgumentNullException.ThrowIfNull(key);
        ArgumentNullException.ThrowIfNull(query);
        var options = _options.Value.ReadCache;
        if (!options.Enabled)
        {
            _metrics.Bypass();
            return await query(ct);
        }

        // The version first, then the query (never the other way round): see the class comment.
        var observed = await _versions.CurrentAsync(options.VersionMaxAge, ct);
        var generation = GenerationFor(observed, options);
        if (generation is null)
        {
            _metrics.Bypass();
            return await query(ct);
        }

        if (!generation.Entries.TryGetValue(key, out var entry))
        {
            if (generation.Entries.Count >= options.MaxEntries)
            {
                _metrics.Bypass();
                return await query(ct);
            }

            var mine = new TaskCompletionSource<object>(TaskCreationOptions.RunContinuationsAsynchronously);
            entry = generation.Entries.GetOrAdd(key, mine.Task);
            if (ReferenceEquals(entry, mine.Task))
            {
                _metrics.Miss();
                _ = FillAsync(generation, key, mine, query);
            }
            else
            {
                _metrics.Hit();
            }
        }
        else
        {
            _metrics.Hit();
        }

        // A caller that leaves stops waiting; the query goes on for the others (and is kept).
        return (T)await entry.WaitAsync(ct);
    }

    // A query shared by many requests must not end when the request that started it goes away: it runs until the
    // process stops (or Npgsql's command timeout); each caller stops waiting at its own cancellation.
    private async Task FillAsync<T>(Generation generation, ReadKey key, TaskCompletionSource<object> answer, Func<CancellationToken, Task<T>> query)
        where T : class
    {
        try
        {
            answer.SetResult(await query(_stopping));
        }
        catch (Exception e)
        {
            // Not kept: the callers waiting now see the error, the next one asks the database again.
            generation.Entries.TryRemove(new KeyValuePair<ReadKey, Task<object>>(key, answer.Task));
            answer.SetException(e);
        }
    }

    private Generation? GenerationFor(ObservedVersion observed, ReadCacheOptions options)
    {
        lock (_gate)
        {
            var current = _current;
            var now = _time.GetTimestamp();
            if (current is not null && observed.Version == current.Observed.Version)
            {
                if (_time.GetElapsedTime(current.CreatedAt, now) < options.Expiry)
                {
                    return current;
                }
            }
            else if (current is not null && observed.Sequence < current.Observed.Sequence)
            {
                // This caller's reading is older than the one the held answers are for: it may not store (or read)
                // answers under the newer version, nor bring back the older one.
                return null;
            }

            var next = new Generation(observed, now);
            Volatile.Write(ref _current, next);
            return next;
        }
    }

    private sealed class Generation(ObservedVersion observed, long createdAt)
    {
        public ObservedVersion Observed { get; } = observed;

        public long CreatedAt { get; } = createdAt;

        public ConcurrentDictionary<ReadKey, Task<object>> Entries { get; } = new();
    }
}
