namespace PumpFleet.Streaming;

/// <summary>
/// Counts the changes of an Orleans client's connection to the cluster (a gateway gained or lost, the connection lost),
/// so a subscriber in a client process knows when to check its explicit subscriptions. Why it must: a silo's pulling
/// agent that cannot reach a client subscriber (<c>ClientNotAvailableException</c>: after every silo died, the new
/// silos' agents deliver before the client has found their gateways) removes that subscription from the pub-sub state
/// (<c>PersistentStreamPullingAgent.ErrorProtocol</c> → <c>UnregisterConsumer</c>) and tells nobody, the client least
/// of all. Registered by the client side of <see cref="LogStreamHostingExtensions.AddPumpFleetLogStreams(IClientBuilder)"/>;
/// absent in a silo (a co-hosted client dies with its silo).
/// </summary>
public sealed class ClientConnectionChanges : IClusterConnectionStatusObserver
{
    private long _changes;

    /// <summary>Changes seen since the client started.</summary>
    public long Changes => Interlocked.Read(ref _changes);

    /// <inheritdoc />
    public void NotifyGatewayCountChanged(int currentNumberOfGateways, int previousNumberOfGateways, bool connectionRecovered) =>
        Interlocked.Increment(ref _changes);

    /// <inheritdoc />
    public void NotifyClusterConnectionLost() => Interlocked.Increment(ref _changes);
}
