using Microsoft.Extensions.Options;
using PumpFleet.Domain.Detection;
using PumpFleet.EventStore;

namespace PumpFleet.Grains.Pumps;

/// <summary>
/// The silo's services every pump activation uses, in one shared object: captured one by one they cost each active
/// pump a reference apiece (issue 15, memory per active pump: 40 bytes of the grain for the five kept here).
/// </summary>
public sealed class PumpGrainServices(
    IEventStore store, IOptions<PumpGrainOptions> options, PumpInstruments instruments,
    IOptions<AnomalyDetectionOptions> detection, TimeProvider time)
{
    /// <summary>The event store (streams and snapshots).</summary>
    public IEventStore Store { get; } = store;

    /// <summary>The pump grains' options.</summary>
    public IOptions<PumpGrainOptions> Options { get; } = options;

    /// <summary>Activation counts and the like.</summary>
    public PumpInstruments Instruments { get; } = instruments;

    /// <summary>The detectors' options.</summary>
    public IOptions<AnomalyDetectionOptions> Detection { get; } = detection;

    /// <summary>Wall time.</summary>
    public TimeProvider Time { get; } = time;
}
