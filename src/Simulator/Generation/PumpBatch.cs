using PumpFleet.Contracts.Events;
using PumpFleet.Simulator.Wire;

namespace PumpFleet.Simulator.Generation;

/// <summary>A hub sends a batch of one pump's events.</summary>
/// <param name="At">Simulated send time.</param>
/// <param name="HubId">Sending hub.</param>
/// <param name="Serial">Pump.</param>
/// <param name="Device">Included on the pump's first batch and on the first after the hub reconnects.</param>
/// <param name="Events">1–500 events, seq increasing.</param>
public sealed record PumpBatch(DateTimeOffset At, string HubId, string Serial, DeviceInfo? Device, IReadOnlyList<GeneratedEvent> Events)
    : FleetOutput(At)
{
    /// <summary>The MQTT topic it is published on.</summary>
    public string Topic => Topics.Events(HubId, Serial);

    /// <summary>The batch payload (protocol v1).</summary>
    public string ToJson() => WireJson.Batch(Device, Events.Select(e => e.Json));
}
