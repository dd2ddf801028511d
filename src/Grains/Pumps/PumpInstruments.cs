using System.Diagnostics.Metrics;

namespace PumpFleet.Grains.Pumps;

/// <summary>Metrics of the pump grains (meter <see cref="MeterName"/>).</summary>
public sealed class PumpInstruments
{
    /// <summary>The meter name to register with OpenTelemetry.</summary>
    public const string MeterName = "PumpFleet.Grains";

    private long _active;

    /// <summary>Creates the instruments.</summary>
    public PumpInstruments(IMeterFactory meterFactory)
    {
        var meter = meterFactory.Create(MeterName);
        meter.CreateObservableGauge("pumpfleet.pumps.active", () => Interlocked.Read(ref _active), "{pump}",
            "Pump grains activated in this silo.");
    }

    /// <summary>Active pump grains in this process.</summary>
    public long Active => Interlocked.Read(ref _active);

    internal void OnActivated() => Interlocked.Increment(ref _active);

    internal void OnDeactivated() => Interlocked.Decrement(ref _active);
}
