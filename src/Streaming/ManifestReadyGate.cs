using Microsoft.Extensions.Logging;
using Orleans;
using Orleans.Metadata;
using Orleans.Runtime;

namespace PumpFleet.Streaming;

/// <summary>
/// Holds the log stream's pulling agents back until this silo is in its own cluster manifest. The manifest learns of
/// the local silo asynchronously after membership marks it active; agents started at the <c>Active</c> stage could
/// deliver to implicitly subscribed grains (the cohort tallies) before any silo is known to host them, and Orleans
/// answers each such call "no active nodes are compatible" and retries it with a warning — dozens at every start.
/// The gate runs at <c>Active</c>; the provider's agents start one stage later (<see cref="AgentsStartStage"/>).
/// </summary>
internal sealed partial class ManifestReadyGate(
    IClusterManifestProvider manifests,
    ILocalSiloDetails silo,
    ILogger<ManifestReadyGate> logger) : ILifecycleParticipant<ISiloLifecycle>
{
    /// <summary>The stage the log stream's agents start at: right after this gate.</summary>
    public const int AgentsStartStage = ServiceLifecycleStage.Active + 1;

    /// <summary>How long the gate waits before it lets the agents start anyway (Orleans' own retries then cover it).</summary>
    private static readonly TimeSpan Limit = TimeSpan.FromSeconds(30);

    public void Participate(ISiloLifecycle lifecycle) =>
        lifecycle.Subscribe(nameof(ManifestReadyGate), ServiceLifecycleStage.Active, WaitAsync, _ => Task.CompletedTask);

    private async Task WaitAsync(CancellationToken cancellationToken)
    {
        if (IsListed(manifests.Current))
        {
            return;
        }

        using var limit = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        limit.CancelAfter(Limit);
        try
        {
            await foreach (var manifest in manifests.Updates.WithCancellation(limit.Token))
            {
                if (IsListed(manifest))
                {
                    return;
                }
            }
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            LogNotListed(Limit);
        }
    }

    private bool IsListed(ClusterManifest manifest) => manifest.Silos.ContainsKey(silo.SiloAddress);

    [LoggerMessage(Level = LogLevel.Warning, Message = "This silo was not in the cluster manifest after {Limit}; the log stream's agents start anyway")]
    private partial void LogNotListed(TimeSpan limit);
}
