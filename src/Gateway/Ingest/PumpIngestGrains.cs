using Orleans.Runtime;
using PumpFleet.Contracts.Grains;

namespace PumpFleet.Gateway.Ingest;

/// <summary>
/// References to pump ingest grains, one per message, without Orleans' per-call type resolution:
/// <c>IGrainFactory.GetGrain&lt;T&gt;(string)</c> resolves the interface's <see cref="GrainInterfaceType"/> on every call
/// by reading the interface's attributes (reflection, about 1 KiB of garbage per message in the profile of issue 15).
/// The grain type and interface type are taken once from the first reference; each call then only builds the grain id.
/// </summary>
internal sealed class PumpIngestGrains(IGrainFactory grains)
{
    // Orleans' placeholder type for an interface it cannot map yet (a client that has not received the cluster's
    // manifest) starts with its system prefix: such a type is not kept, so the next call resolves again.
    private const string SystemTypePrefix = "sys.";

    // Only Orleans' own factory is bypassed: a factory wrapped around it (the tests' fault injection) sees every call.
    private readonly bool _cacheable = grains.GetType().Assembly == typeof(IClusterClient).Assembly;
    private Resolved? _resolved;

    public IPumpIngestGrain Get(string serial)
    {
        if (_resolved is { } r)
        {
            return (IPumpIngestGrain)grains.GetGrain(GrainId.Create(r.GrainType, IdSpan.Create(serial)), r.InterfaceType);
        }

        var reference = grains.GetGrain<IPumpIngestGrain>(serial);
        if (_cacheable && reference is GrainReference g && !g.GrainId.Type.ToString()!.StartsWith(SystemTypePrefix, StringComparison.Ordinal))
        {
            _resolved = new Resolved(g.GrainId.Type, g.InterfaceType);
        }

        return reference;
    }

    private sealed record Resolved(GrainType GrainType, GrainInterfaceType InterfaceType);
}
