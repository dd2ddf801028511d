using PumpFleet.Contracts.Events;

namespace PumpFleet.Simulator.Generation;

/// <summary>An event as generated: the record and its wire JSON (serialised once, reused on every resend).</summary>
/// <param name="Event">The event, seq and pump clock applied.</param>
/// <param name="Json">Its JSON object as it appears in a batch's <c>events</c> array.</param>
public sealed record GeneratedEvent(DeviceEvent Event, string Json);
