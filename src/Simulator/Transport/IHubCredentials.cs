namespace PumpFleet.Simulator.Transport;

/// <summary>Supplies a hub's MQTT password (its per-hub secret).</summary>
public interface IHubCredentials
{
    /// <summary>The secret of <paramref name="hubId"/>.</summary>
    string GetSecret(string hubId);
}
