namespace PumpFleet.Simulator.Transport;

/// <summary>Secrets from a delegate (a vault lookup, a test table).</summary>
public sealed class DelegateHubCredentials(Func<string, string> secretOf) : IHubCredentials
{
    /// <inheritdoc/>
    public string GetSecret(string hubId) => secretOf(hubId);
}
