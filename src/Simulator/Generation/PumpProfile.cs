using System.Globalization;
using PumpFleet.Contracts.Events;

namespace PumpFleet.Simulator.Generation;

/// <summary>A pump's fixed identity in the simulated fleet.</summary>
/// <param name="Index">0-based index in the fleet.</param>
/// <param name="Serial">Serial number (topic-safe).</param>
/// <param name="HubId">The bedside hub it is paired with.</param>
/// <param name="Device">Model, firmware, lot and capacity as sent in <c>device</c>.</param>
/// <param name="HasSensor">Whether the pump reports <c>measured</c> reservoir levels.</param>
public sealed record PumpProfile(int Index, string Serial, string HubId, DeviceInfo Device, bool HasSensor)
{
    /// <summary>The serial of the fleet's pump number <paramref name="index"/>.</summary>
    public static string SerialOf(string prefix, int index) => string.Create(CultureInfo.InvariantCulture, $"{prefix}-P{index:D6}");
}
