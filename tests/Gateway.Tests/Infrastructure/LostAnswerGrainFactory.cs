using System.Collections.Concurrent;
using System.Reflection;
using PumpFleet.Contracts.Grains;

namespace PumpFleet.Gateway.Tests.Infrastructure;

/// <summary>
/// The real grain factory, except that the first ingest call of each serial starting with <see cref="Prefix"/>
/// reaches the real grain (which stores the batch) but its answer never arrives: what a call looks like when the
/// silo hosting the pump is killed after storing and before answering. Later calls are passed through.
/// </summary>
public class LostAnswerGrainFactory : DispatchProxy
{
    public const string Prefix = "LOST";

    private IGrainFactory _inner = null!;
    private ConcurrentDictionary<string, int> _calls = null!;

    /// <summary>Ingest calls made per serial (lost or not).</summary>
    public int CallsOf(string serial) => _calls.GetValueOrDefault(serial);

    public static (IGrainFactory Factory, LostAnswerGrainFactory Probe) Wrap(IGrainFactory inner)
    {
        var proxy = Create<IGrainFactory, LostAnswerGrainFactory>();
        var probe = (LostAnswerGrainFactory)(object)proxy;
        probe._inner = inner;
        probe._calls = new(StringComparer.Ordinal);
        return (proxy, probe);
    }

    protected override object? Invoke(MethodInfo? targetMethod, object?[]? args)
    {
        var result = targetMethod!.Invoke(_inner, args);
        if (result is IPumpIngestGrain real && args is [string key, ..] && key.StartsWith(Prefix, StringComparison.Ordinal))
        {
            return new LosingIngestGrain(real, key, _calls);
        }

        return result;
    }

    private sealed class LosingIngestGrain(IPumpIngestGrain real, string serial, ConcurrentDictionary<string, int> calls) : IPumpIngestGrain
    {
        public async Task<IngestResult> IngestAsync(IngestBatch batch)
        {
            var n = calls.AddOrUpdate(serial, 1, (_, c) => c + 1);
            var result = await real.IngestAsync(batch);
            if (n == 1)
            {
                await new TaskCompletionSource().Task; // stored, but the answer is lost
            }

            return result;
        }

        public Task PairAsync(string hubId, string by) => real.PairAsync(hubId, by);
    }
}
