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

    /// <summary>
    /// Serials starting with this get a grain that throws <see cref="OperationCanceledException"/> the gateway did not
    /// cause (no token of its was cancelled): once mistaken for "we are shutting down" and retried forever.
    /// </summary>
    public const string CancelPrefix = "CANCEL";

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
            return new ThrowingIngestGrain(real, () => new InvalidOperationException("A deterministic bug behind the gateway."));
        }

        if (result is IPumpIngestGrain cancelling && args is [string k, ..] && k.StartsWith(CancelPrefix, StringComparison.Ordinal))
        {
            return new ThrowingIngestGrain(cancelling, () => new OperationCanceledException("A grain cancelled on its own."));
        }

        return result;
    }

    private sealed class ThrowingIngestGrain(IPumpIngestGrain real, Func<Exception> fault) : IPumpIngestGrain
    {
        public Task<IngestResult> IngestAsync(IngestBatch batch) => Task.FromException<IngestResult>(fault());

        public Task PairAsync(string hubId, string by) => real.PairAsync(hubId, by);
    }
}
