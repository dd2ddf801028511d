using PumpFleet.Contracts.Events;
using PumpFleet.Contracts.Grains;

namespace PumpFleet.Detection.Tests;

/// <summary>
/// Feeds a real pump grain as its hub would: paired to hub H-1, an SM2-20 of <c>lot</c>, every event numbered in order
/// (the hub's seq), each batch received at the test's clock.
/// </summary>
internal sealed class HubFeed
{
    private readonly IPumpIngestGrain _grain;
    private readonly DeviceInfo _device;
    private readonly TimeProvider _time;
    private long _seq;

    private HubFeed(IPumpIngestGrain grain, DeviceInfo device, TimeProvider time) => (_grain, _device, _time) = (grain, device, time);

    /// <summary>Pairs <paramref name="grain"/>'s pump to H-1 and returns its feed.</summary>
    public static async Task<HubFeed> PairAsync(IPumpIngestGrain grain, TimeProvider time, string lot = "L1")
    {
        await grain.PairAsync("H-1", "test");
        return new HubFeed(grain, new DeviceInfo { Model = "SM2-20", Firmware = "4.2.1", Lot = lot, ReservoirCapacityMl = 20 }, time);
    }

    /// <summary>Sends one batch, numbering its events after the previous batch's.</summary>
    public Task<IngestResult> SendAsync(params DeviceEvent[] events) => _grain.IngestAsync(new IngestBatch
    {
        HubId = "H-1", ReceivedAt = _time.GetUtcNow(), Device = _device,
        Events = [.. events.Select(e => e with { Seq = ++_seq })],
    });
}
