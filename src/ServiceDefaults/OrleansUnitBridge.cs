using System.Collections.Concurrent;
using System.Diagnostics;
using System.Diagnostics.Metrics;

namespace PumpFleet.ServiceDefaults;

/// <summary>
/// Re-publishes Orleans' instruments that are measured in milliseconds or megabytes in Prometheus' base units
/// (seconds, bytes), under the same instrument names, on a meter of our own. OpenTelemetry views can rename an
/// instrument and give it help text but cannot scale its values, and <c>promtool check metrics</c> rejects
/// <c>_milliseconds</c> and <c>_megabytes</c>. <see cref="MetricViews"/> drops the originals from the export.
/// </summary>
public sealed class OrleansUnitBridge : IDisposable
{
    /// <summary>The meter the converted instruments are published on (matched by the <c>PumpFleet.*</c> wildcard).</summary>
    public const string MeterName = "PumpFleet.OrleansUnits";

    internal const string OrleansMeterName = "Microsoft.Orleans";

    // Seconds-oriented buckets: the exporter's defaults (0, 5, 10, 25, ... 10000) are meant for milliseconds.
    private static readonly double[] s_secondsBuckets = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

    private readonly Meter _meter;
    private readonly MeterListener _listener = new();
    private readonly ConcurrentDictionary<Instrument, Action<double, KeyValuePair<string, object?>[]>> _sync = new();
    private readonly ConcurrentDictionary<Instrument, List<Measurement<double>>> _observed = new();
    private readonly Lock _observeLock = new();

    /// <summary>Starts listening to the Orleans meter.</summary>
    public OrleansUnitBridge(IMeterFactory meterFactory)
    {
        _meter = meterFactory.Create(MeterName);
        _listener.InstrumentPublished = (instrument, listener) =>
        {
            if (IsConverted(instrument) && Bridge(instrument))
            {
                listener.EnableMeasurementEvents(instrument);
            }
        };
        _listener.SetMeasurementEventCallback<double>((i, v, tags, _) => OnMeasurement(i, v, tags));
        _listener.SetMeasurementEventCallback<float>((i, v, tags, _) => OnMeasurement(i, v, tags));
        _listener.SetMeasurementEventCallback<long>((i, v, tags, _) => OnMeasurement(i, v, tags));
        _listener.SetMeasurementEventCallback<int>((i, v, tags, _) => OnMeasurement(i, v, tags));
        _listener.Start();
    }

    /// <summary>Whether <paramref name="instrument"/> is one this bridge converts (and the export must drop).</summary>
    public static bool IsConverted(Instrument instrument) =>
        instrument.Meter.Name == OrleansMeterName && Conversion(instrument.Unit) is not null;

    private static (string Unit, double Factor)? Conversion(string? unit) => unit switch
    {
        "ms" => ("s", 1e-3),
        "MB" => ("By", 1024d * 1024d),
        _ => null,
    };

    private bool Bridge(Instrument source)
    {
        var (unit, factor) = Conversion(source.Unit)!.Value;
        var description = string.IsNullOrEmpty(source.Description) ? MetricViews.OrleansDescription(source.Name) : source.Description;
        switch (source)
        {
            case Histogram<double> or Histogram<float> or Histogram<long> or Histogram<int>:
                var histogram = _meter.CreateHistogram(source.Name, unit, description, tags: null,
                    advice: unit == "s" ? new InstrumentAdvice<double> { HistogramBucketBoundaries = s_secondsBuckets } : null);
                _sync[source] = (v, tags) => histogram.Record(v * factor, tags);
                return true;
            case Counter<double> or Counter<float> or Counter<long> or Counter<int>:
                var counter = _meter.CreateCounter<double>(source.Name, unit, description);
                _sync[source] = (v, tags) => counter.Add(v * factor, tags);
                return true;
            case UpDownCounter<double> or UpDownCounter<float> or UpDownCounter<long> or UpDownCounter<int>:
                var upDown = _meter.CreateUpDownCounter<double>(source.Name, unit, description);
                _sync[source] = (v, tags) => upDown.Add(v * factor, tags);
                return true;
            case { IsObservable: true }:
                _observed[source] = [];
                IEnumerable<Measurement<double>> Observe() => ObserveConverted(source, factor);
                var kind = source.GetType().Name;
                if (kind.StartsWith("ObservableGauge", StringComparison.Ordinal))
                {
                    _meter.CreateObservableGauge(source.Name, Observe, unit, description);
                }
                else if (kind.StartsWith("ObservableCounter", StringComparison.Ordinal))
                {
                    _meter.CreateObservableCounter(source.Name, Observe, unit, description);
                }
                else
                {
                    _meter.CreateObservableUpDownCounter(source.Name, Observe, unit, description);
                }

                return true;
            default:
                return false;
        }
    }

    private void OnMeasurement<T>(Instrument instrument, T value, ReadOnlySpan<KeyValuePair<string, object?>> tags)
        where T : struct, IConvertible
    {
        var v = value.ToDouble(System.Globalization.CultureInfo.InvariantCulture);
        if (_sync.TryGetValue(instrument, out var record))
        {
            record(v, tags.ToArray());
        }
        else if (_observed.TryGetValue(instrument, out var list))
        {
            list.Add(new Measurement<double>(v, tags));
        }
    }

    // Called from our observable instrument's callback at collection time: asks the listener to observe Orleans'
    // instrument now, and returns what it reported, converted.
    private List<Measurement<double>> ObserveConverted(Instrument source, double factor)
    {
        lock (_observeLock)
        {
            foreach (var list in _observed.Values)
            {
                list.Clear();
            }

            _listener.RecordObservableInstruments();
            return [.. _observed[source].Select(m => new Measurement<double>(m.Value * factor, m.Tags))];
        }
    }

    /// <inheritdoc />
    public void Dispose()
    {
        _listener.Dispose();
        _meter.Dispose();
    }
}
