using System.Diagnostics.Metrics;

namespace PumpFleet.TestSupport;

/// <summary>
/// A meter factory of one test: its meters carry it as their <see cref="Meter.Scope"/>, so a <c>MeterListener</c> can
/// take only this test's instruments (a listener sees every meter of the process, other tests' included), and they are
/// disposed with it.
/// </summary>
public sealed class TestMeterFactory : IMeterFactory
{
    private readonly List<Meter> _meters = [];

    public Meter Create(MeterOptions options)
    {
        var meter = new Meter(options.Name, options.Version, options.Tags, this);
        lock (_meters)
        {
            _meters.Add(meter);
        }

        return meter;
    }

    public void Dispose()
    {
        lock (_meters)
        {
            _meters.ForEach(m => m.Dispose());
            _meters.Clear();
        }
    }
}
