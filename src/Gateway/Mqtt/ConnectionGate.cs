using System.Collections.Concurrent;
using MQTTnet.Adapter;

namespace PumpFleet.Gateway.Mqtt;

/// <summary>How a freshly accepted connection was admitted.</summary>
internal enum Admission
{
    /// <summary>Under the cap: it may authenticate.</summary>
    Admitted,

    /// <summary>Over the cap: its CONNECT is answered <c>ServerBusy</c> without a credential check.</summary>
    Refused,

    /// <summary>Far over the cap: closed at once, without reading anything.</summary>
    Closed,
}

/// <summary>One accepted TCP connection, from accept until it closes.</summary>
internal sealed class GatedConnection(Admission admission, string remote)
{
    private int _authenticated;

    /// <summary>How it was admitted.</summary>
    public Admission Admission { get; } = admission;

    /// <summary>Remote address and port, for log lines.</summary>
    public string Remote { get; } = remote;

    /// <summary>Whether the hub authenticated (it no longer counts against the cap).</summary>
    public bool Authenticated => Volatile.Read(ref _authenticated) == 1;

    /// <summary>The hub id, once it authenticated (for log lines).</summary>
    public string? HubId { get; set; }

    /// <summary>Marks the connection authenticated, once; true the first time.</summary>
    public bool MarkAuthenticated() => Interlocked.Exchange(ref _authenticated, 1) == 0;
}

/// <summary>
/// Counts connections that have been accepted but have not authenticated yet, the cheapest thing for an attacker
/// to hold open (a socket, a CONNECT that never comes, a password check queued behind others). Under
/// <c>MaxUnauthenticatedConnections</c> a connection is admitted; over it, refused with <c>ServerBusy</c> (and counted
/// against a second, equal allowance of refused connections still waiting for their CONNECT); over both, closed.
/// </summary>
internal sealed class ConnectionGate(int maxUnauthenticated)
{
    private readonly ConcurrentDictionary<IMqttChannelAdapter, GatedConnection> _byAdapter = new(ReferenceEqualityComparer.Instance);
    private int _pending;
    private int _refusing;

    /// <summary>Connections admitted and not yet authenticated.</summary>
    public int Pending => Volatile.Read(ref _pending);

    /// <summary>Decides on a connection that was just accepted.</summary>
    public GatedConnection Admit(string remote)
    {
        if (Interlocked.Increment(ref _pending) <= maxUnauthenticated)
        {
            return new GatedConnection(Admission.Admitted, remote);
        }

        Interlocked.Decrement(ref _pending);
        if (Interlocked.Increment(ref _refusing) <= maxUnauthenticated)
        {
            return new GatedConnection(Admission.Refused, remote);
        }

        Interlocked.Decrement(ref _refusing);
        return new GatedConnection(Admission.Closed, remote);
    }

    /// <summary>Links the MQTTnet adapter of a connection to it, so the CONNECT handler can find it.</summary>
    public void Attach(IMqttChannelAdapter adapter, GatedConnection connection) => _byAdapter[adapter] = connection;

    /// <summary>The connection behind an MQTTnet adapter (null for adapters this gate did not create).</summary>
    public GatedConnection? Find(IMqttChannelAdapter adapter) => _byAdapter.GetValueOrDefault(adapter);

    /// <summary>The hub authenticated: it leaves the pending count and its connect timeout no longer applies.</summary>
    public void Authenticated(GatedConnection connection)
    {
        if (connection.Admission == Admission.Admitted && connection.MarkAuthenticated())
        {
            Interlocked.Decrement(ref _pending);
        }
    }

    /// <summary>The connection closed.</summary>
    public void Closed(IMqttChannelAdapter? adapter, GatedConnection connection)
    {
        if (adapter is not null)
        {
            _byAdapter.TryRemove(adapter, out _);
        }

        switch (connection.Admission)
        {
            case Admission.Admitted when connection.MarkAuthenticated():
                Interlocked.Decrement(ref _pending);
                break;
            case Admission.Refused:
                Interlocked.Decrement(ref _refusing);
                break;
        }
    }
}
