using System.Net;
using System.Net.Sockets;

namespace PumpFleet.TestSupport;

/// <summary>The one free-port helper of the tests (every server a test starts listens on loopback only).</summary>
public static class Ports
{
    /// <summary>A loopback port that was free a moment ago (the OS picks it).</summary>
    public static int Free()
    {
        using var l = new TcpListener(IPAddress.Loopback, 0);
        l.Start();
        return ((IPEndPoint)l.LocalEndpoint).Port;
    }
}
