using System.Diagnostics.Metrics;

namespace PumpFleet.Streaming;

/// <summary>Instruments of the log stream provider (meter <c>PumpFleet.Streaming</c>).</summary>
public sealed class LogStreamInstruments
{
    /// <summary>The meter name.</summary>
    public const string MeterName = "PumpFleet.Streaming";

    private readonly Counter<long> _read;
    private readonly Counter<long> _failures;

    /// <summary>Creates the instruments.</summary>
    public LogStreamInstruments(IMeterFactory factory)
    {
        ArgumentNullException.ThrowIfNull(factory);
        var meter = factory.Create(MeterName);
        _read = meter.CreateCounter<long>("pumpfleet.stream.events.read", "{event}", "Events read from the log by the stream receivers");
        _failures = meter.CreateCounter<long>("pumpfleet.stream.delivery.failures", "{failure}", "Stream deliveries or subscriptions that failed after Orleans' retries");
        // Both series exist from the start at 0: Prometheus' increase() cannot see a first failure on a series that
        // appears with it (the alert PumpFleetStreamDeliveryFailed would miss it).
        _failures.Add(0, new KeyValuePair<string, object?>("kind", Delivery));
        _failures.Add(0, new KeyValuePair<string, object?>("kind", Subscription));
    }

    internal const string Delivery = "delivery";
    internal const string Subscription = "subscription";

    internal void OnRead(int partition, int count) => _read.Add(count, new KeyValuePair<string, object?>("partition", partition));

    internal void OnFailure(string kind) => _failures.Add(1, new KeyValuePair<string, object?>("kind", kind));
}
