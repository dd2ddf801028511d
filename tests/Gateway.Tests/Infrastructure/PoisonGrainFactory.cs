using System.Reflection;
using PumpFleet.Contracts.Grains;

namespace PumpFleet.Gateway.Tests.Infrastructure;

/// <summary>
/// The real grain factory, except that the ingest grain of a serial starting with <see cref="Prefix"/> throws an
/// unexpected exception on every ingest (the same way each time): a stand-in for a deterministic bug behind the
/// gateway that no input check foresaw. Pairing still goes to the real grain.
/// </summary>
public class PoisonGrainFactory : DispatchProxy
{
    public const string Prefix = "POISON";

    private IGrainFactory _inner = null!;

    public static IGrainFactory Wrap(IGrainFactory inner)
    {
        var proxy = Create<IGrainFactory, PoisonGrainFactory>();
        ((PoisonGrainFactory)(object)proxy)._inner = inner;
        return proxy;
    }

    protected override object? Invoke(MethodInfo? targetMethod, object?[]? args)
    {
        var result = targetMethod!.Invoke(_inner, args);
        if (result is IPumpIngestGrain real && args is [string key, ..] && key.StartsWith(Prefix, StringComparison.Ordinal))
        {
            return new ThrowingIngestGrain(real);
        }

        return result;
    }

    private sealed class ThrowingIngestGrain(IPumpIngestGrain real) : IPumpIngestGrain
    {
        public Task<IngestResult> IngestAsync(IngestBatch batch) => throw new InvalidOperationException("A deterministic bug behind the gateway.");

        public Task PairAsync(string hubId, string by) => real.PairAsync(hubId, by);
    }
}
