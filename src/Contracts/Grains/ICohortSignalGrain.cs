using PumpFleet.Contracts.Events;

namespace PumpFleet.Contracts.Grains;

/// <summary>
/// The one writer of a cohort's stream (<c>cohort:{model}:{firmware}:{lot}</c>): the cohort job's open/resolve and
/// the dashboard's acknowledge/resolve (<see cref="IPumpAnomalyGrain"/> on the same key) go through the same grain,
/// so they cannot conflict. Key: the cohort stream id.
/// </summary>
[Alias("pumpfleet.ICohortSignalGrain")]
public interface ICohortSignalGrain : IGrainWithStringKey
{
    /// <summary>
    /// Opens the cohort's <c>cohort-signal</c> anomaly when <paramref name="finding"/> is given and none is open, or
    /// resolves the open one when it is null. Returns the event appended, or null when nothing changed.
    /// </summary>
    [Alias("SetSignal")]
    Task<PumpEvent?> SetSignalAsync(CohortSignalFinding? finding);

    /// <summary>
    /// The same for another fleet-level kind on its own stream: <c>cohort-flow-deviation</c> on
    /// <c>cohort-flow:{dimension}:{value}</c> (the cohort flow early warning). Opens one of <paramref name="kind"/> when
    /// <paramref name="finding"/> is given and none is open; resolves the open one when it is null.
    /// </summary>
    [Alias("SetFinding")]
    Task<PumpEvent?> SetFindingAsync(string kind, CohortSignalFinding? finding);
}

/// <summary>What the cohort job found: the summary and numbers of the signal.</summary>
[GenerateSerializer, Immutable, Alias("pumpfleet.CohortSignalFinding.v1")]
public sealed record CohortSignalFinding
{
    /// <summary>Human-readable finding.</summary>
    [Id(0)] public required string Summary { get; init; }
    /// <summary>The numbers the test used.</summary>
    [Id(1)] public required IReadOnlyDictionary<string, double> Evidence { get; init; }
}
