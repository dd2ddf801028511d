using System.Diagnostics.Metrics;

namespace PumpFleet.Projections;

/// <summary>The projection engine's counters (meter <see cref="MeterName"/>, shared with the read models' gauges); names follow docs/metrics.md.</summary>
public sealed class ProjectionInstruments
{
    /// <summary>Meter name to register with OpenTelemetry.</summary>
    public const string MeterName = "PumpFleet.Projections";

    private readonly Counter<long> _pageFailures;
    private readonly Counter<long> _parked;

    /// <summary>Creates the instruments on a meter from <paramref name="meterFactory"/>.</summary>
    public ProjectionInstruments(IMeterFactory meterFactory)
    {
        ArgumentNullException.ThrowIfNull(meterFactory);
        var meter = meterFactory.Create(MeterName);
        _pageFailures = meter.CreateCounter<long>("pumpfleet.projection.page.failures", "{page}",
            "Pages on which a projection threw; each is rolled back and retried with a backoff.");
        _parked = meter.CreateCounter<long>("pumpfleet.projection.parked", "{event}",
            "Events parked because the projection kept failing on them (listed by projections parked).");
    }

    internal void PageFailed(string projection) => _pageFailures.Add(1, new KeyValuePair<string, object?>("projection", projection));

    internal void Parked(string projection, int events) => _parked.Add(events, new KeyValuePair<string, object?>("projection", projection));
}
