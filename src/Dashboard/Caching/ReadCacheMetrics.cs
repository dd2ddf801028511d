using System.Diagnostics.Metrics;

namespace PumpFleet.Dashboard.Caching;

/// <summary>
/// Figures of the shared read cache (meter <c>PumpFleet.Dashboard.ReadCache</c>): lookups by result (<c>hit</c>,
/// <c>miss</c>: this lookup ran the query; <c>bypass</c>: answered without the cache: switched off, full, or a version
/// older than the cache's), version reads, and entries held. The same counts are kept as properties for tests and the
/// benchmark.
/// </summary>
public sealed class ReadCacheMetrics
{
    /// <summary>Meter name.</summary>
    public const string MeterName = "PumpFleet.Dashboard.ReadCache";

    private readonly Counter<long> _lookups;
    private readonly Counter<long> _versionReads;
    private long _hits;
    private long _misses;
    private long _bypasses;
    private long _versions;

    /// <summary>Creates the instruments on the host's meter factory.</summary>
    public ReadCacheMetrics(IMeterFactory meterFactory)
    {
        ArgumentNullException.ThrowIfNull(meterFactory);
        var meter = meterFactory.Create(MeterName);
        _lookups = meter.CreateCounter<long>("pumpfleet.dashboard.read_cache.lookups", description: "API list reads looked up in the shared read cache, by result (hit, miss, bypass)");
        _versionReads = meter.CreateCounter<long>("pumpfleet.dashboard.read_cache.version_reads", description: "Reads of the read models' version by this process (live channel and API together)");
        meter.CreateObservableGauge("pumpfleet.dashboard.read_cache.entries", () => Entries?.Invoke() ?? 0, description: "Answers held for the current read-model version");
    }

    /// <summary>Source of the entries gauge (set by the cache).</summary>
    internal Func<long>? Entries { get; set; }

    /// <summary>Lookups answered from the cache (including those that joined a query in flight).</summary>
    public long Hits => Interlocked.Read(ref _hits);

    /// <summary>Lookups that ran the query.</summary>
    public long Misses => Interlocked.Read(ref _misses);

    /// <summary>Lookups answered without the cache.</summary>
    public long Bypasses => Interlocked.Read(ref _bypasses);

    /// <summary>Version reads.</summary>
    public long VersionReads => Interlocked.Read(ref _versions);

    internal void Hit()
    {
        Interlocked.Increment(ref _hits);
        _lookups.Add(1, new KeyValuePair<string, object?>("result", "hit"));
    }

    internal void Miss()
    {
        Interlocked.Increment(ref _misses);
        _lookups.Add(1, new KeyValuePair<string, object?>("result", "miss"));
    }

    internal void Bypass()
    {
        Interlocked.Increment(ref _bypasses);
        _lookups.Add(1, new KeyValuePair<string, object?>("result", "bypass"));
    }

    internal void VersionRead()
    {
        Interlocked.Increment(ref _versions);
        _versionReads.Add(1);
    }
}
