using PumpFleet.Contracts.Events;
using PumpFleet.Simulator.Faults;
using PumpFleet.Simulator.Wire;

namespace PumpFleet.Simulator.Generation;

/// <summary>An event as generated: the record and its wire JSON (serialised once, reused on every resend).</summary>
/// <param name="Event">The event, seq and pump clock applied.</param>
/// <param name="Json">Its JSON object as it appears in a batch's <c>events</c> array.</param>
public sealed record GeneratedEvent(DeviceEvent Event, string Json);

/// <summary>Something that happens in the fleet at simulated time <see cref="At"/>; the generator yields these in time order.</summary>
public abstract record FleetOutput(DateTimeOffset At);

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

/// <summary>A hub goes offline (ordinary outage or silent-hub fault) or comes back.</summary>
public sealed record HubConnectivityChanged(DateTimeOffset At, string HubId, bool Online) : FleetOutput(At);

/// <summary>A fault took effect; its ground truth.</summary>
public sealed record FaultInjected(DateTimeOffset At, GroundTruthRecord Record) : FleetOutput(At);
