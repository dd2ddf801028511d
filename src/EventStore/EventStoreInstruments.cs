using System.Diagnostics.Metrics;

namespace PumpFleet.EventStore;

/// <summary>Metrics of the event store (meter <see cref="MeterName"/>).</summary>
public sealed class EventStoreInstruments
{
    /// <summary>The meter name to register with OpenTelemetry.</summary>
    public const string MeterName = "PumpFleet.EventStore";

    private readonly Counter<long> _stored;
    private readonly Histogram<double> _appendDuration;
    private readonly Counter<long> _errors;
    private readonly Counter<long> _groupFallbacks;
    private readonly Counter<long> _tailReads;

    /// <summary>Creates the instruments.</summary>
    public EventStoreInstruments(IMeterFactory meterFactory)
    {
        var meter = meterFactory.Create(MeterName);
        _stored = meter.CreateCounter<long>("pumpfleet.events.stored", "{event}", "Events durably appended to the event store.");
        _appendDuration = meter.CreateHistogram<double>("pumpfleet.eventstore.append.duration", "s",
            "Duration of one append round trip (one batch).", tags: null,
            advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5] });
        _errors = meter.CreateCounter<long>("pumpfleet.eventstore.errors", "{error}", "Failed event store operations.");
        _groupFallbacks = meter.CreateCounter<long>("pumpfleet.eventstore.group_append.fallbacks", "{group}",
            "Groups of appends that the set-based group append did not store and that ran again on the per-stream path, by reason.");
        _tailReads = meter.CreateCounter<long>("pumpfleet.eventstore.tail_cache.reads", "{read}",
            "Log partition reads of the process, answered by the shared tail (hit) or by PostgreSQL (miss).");
    }

    internal void OnTailRead(bool hit) => _tailReads.Add(1, new KeyValuePair<string, object?>("result", hit ? "hit" : "miss"));

    internal void OnAppended(int events, TimeSpan elapsed)
    {
        _stored.Add(events);
        _appendDuration.Record(elapsed.TotalSeconds);
    }

    // The reasons are a closed set (GroupCommitter.FallbackReason), so the label stays low-cardinality.
    internal void OnGroupFallback(string reason) => _groupFallbacks.Add(1, new KeyValuePair<string, object?>("reason", reason));

    internal void OnError(string operation) => _errors.Add(1, new KeyValuePair<string, object?>("operation", operation));
}
