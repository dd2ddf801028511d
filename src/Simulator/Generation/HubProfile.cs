namespace PumpFleet.Simulator.Generation;

/// <summary>A bedside hub and its pumps.</summary>
/// <param name="Index">0-based index.</param>
/// <param name="HubId">Hub id (MQTT username and client id).</param>
/// <param name="Firmware">The hub's own firmware, announced on its status topic.</param>
/// <param name="Pumps">Its pumps, in fleet order.</param>
public sealed record HubProfile(int Index, string HubId, string Firmware, IReadOnlyList<PumpProfile> Pumps);
