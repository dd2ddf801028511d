using PumpFleet.Contracts.Views;

namespace PumpFleet.Contracts.Grains;

/// <summary>Ingress of a pump's events (called by the gateway). Key: the pump serial.</summary>
[Alias("pumpfleet.IPumpIngestGrain")]
public interface IPumpIngestGrain : IGrainWithStringKey
{
    /// <summary>
    /// Drops events already stored, applies domain rules, records gaps, appends the accepted events in one
    /// round trip and returns the committed seq. Throws when the append fails: nothing is then acknowledged.
    /// </summary>
    [Alias("Ingest")]
    Task<IngestResult> IngestAsync(IngestBatch batch);

    /// <summary>Pairs the pump with a hub (an event). Idempotent.</summary>
    [Alias("Pair")]
    Task PairAsync(string hubId, string by);
}

/// <summary>Read side of one pump (called by the dashboard and the API). Key: the pump serial.</summary>
[Alias("pumpfleet.IPumpQueryGrain")]
public interface IPumpQueryGrain : IGrainWithStringKey
{
    /// <summary>Current state.</summary>
    [Alias("GetState")]
    Task<PumpView> GetStateAsync();

    /// <summary>The state as it was at <paramref name="asOf"/> (event time), rebuilt from the stored events.</summary>
    /// <remarks>Interleaved: a stateless read of the store, so a viewer never waits behind, or stalls, the pump's ingest.</remarks>
    [Alias("GetStateAsOf"), Orleans.Concurrency.AlwaysInterleave]
    Task<PumpView> GetStateAsOfAsync(DateTimeOffset asOf);
}

/// <summary>Anomaly lifecycle commands on one pump (called by the dashboard). Key: the pump serial.</summary>
[Alias("pumpfleet.IPumpAnomalyGrain")]
public interface IPumpAnomalyGrain : IGrainWithStringKey
{
    /// <summary>Acknowledges an open anomaly. Returns false when it is unknown or not open.</summary>
    [Alias("Acknowledge")]
    Task<bool> AcknowledgeAnomalyAsync(string anomalyId, string by, string? note);

    /// <summary>Resolves an open or acknowledged anomaly. Returns false when it is unknown or already resolved.</summary>
    [Alias("Resolve")]
    Task<bool> ResolveAnomalyAsync(string anomalyId, string by, string? note);
}
