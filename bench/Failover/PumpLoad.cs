using System.Collections.Concurrent;
using System.Diagnostics;
using PumpFleet.Contracts.Events;
using PumpFleet.Contracts.Grains;

namespace PumpFleet.Failover;

/// <summary>
/// Simulated hubs without MQTT: each pump sends batches of dose events through <see cref="IPumpIngestGrain"/> the way a
/// hub does (protocol v1): the next batch starts above the acknowledged committedSeq, and a batch that failed or timed
/// out is resent unchanged until it is acknowledged. Nothing is ever skipped, so at the end every seq from 1 to the
/// pump's last committedSeq was sent and acknowledged.
/// </summary>
public sealed class PumpLoad(IGrainFactory grains, IReadOnlyList<string> serials, int batchSize)
{
    private static readonly DeviceInfo Device = new() { Model = "SM2-40", Firmware = "4.2.1", Lot = "FAILOVER", ReservoirCapacityMl = 40 };
    private readonly ConcurrentDictionary<string, PumpProgress> _progress = new(serials.ToDictionary(s => s, _ => new PumpProgress()));
    private readonly DateTimeOffset _t0 = DateTimeOffset.UtcNow.AddDays(-30);
    private long _markTimestamp;

    /// <summary>Per-pump counters.</summary>
    public IReadOnlyDictionary<string, PumpProgress> Progress => _progress;

    /// <summary>Pairs every pump with its hub (an event; idempotent, so a timed-out first activation is simply retried).</summary>
    public async Task PairAllAsync() =>
        await Task.WhenAll(serials.Select(async s =>
        {
            for (var attempt = 1; ; attempt++)
            {
                try
                {
                    await grains.GetGrain<IPumpIngestGrain>(s).PairAsync(HubOf(s), "failover-bench");
                    return;
                }
                catch (TimeoutException) when (attempt < 10)
                {
                    // Cold silos on a busy machine can take longer than the 5 s response timeout for first activations.
                }
            }
        }));

    /// <summary>
    /// Marks the instant of the fault. From then on each pump records the latency from the mark to its first
    /// acknowledged batch whose call *started* after the mark (a call already in flight proves nothing).
    /// </summary>
    public void Mark() => Interlocked.Exchange(ref _markTimestamp, Stopwatch.GetTimestamp());

    /// <summary>Runs every pump until <paramref name="stop"/> is cancelled; each pump finishes its current batch (with resends) first.</summary>
    public Task RunAsync(CancellationToken stop) => Task.WhenAll(serials.Select(s => Task.Run(() => RunPumpAsync(s, _progress[s], stop), CancellationToken.None)));

    private async Task RunPumpAsync(string serial, PumpProgress p, CancellationToken stop)
    {
        var grain = grains.GetGrain<IPumpIngestGrain>(serial);
        while (!stop.IsCancellationRequested)
        {
            var first = p.CommittedSeq + 1;
            var events = new DeviceEvent[batchSize];
            for (var i = 0; i < batchSize; i++)
            {
                var seq = first + i;
                var at = _t0.AddMinutes(seq);
                events[i] = new DoseDelivered { Seq = seq, At = at, From = at.AddMinutes(-1), VolumeMl = 0.001, Kind = "basal" };
            }

            var batch = new IngestBatch { HubId = HubOf(serial), ReceivedAt = DateTimeOffset.UtcNow, Device = Device, Events = events };
            p.HighestSent = Math.Max(p.HighestSent, first + batchSize - 1);
            while (true)
            {
                var started = Stopwatch.GetTimestamp();
                p.Attempts++;
                try
                {
                    var result = await grain.IngestAsync(batch);
                    p.CommittedSeq = result.CommittedSeq;
                    p.Stored += result.Stored;
                    p.Duplicates += result.Duplicates;
                    p.Rejections += result.Rejections.Count;
                    p.Acks++;
                    var mark = Interlocked.Read(ref _markTimestamp);
                    if (mark != 0 && started >= mark && p.RecoveredAfter is null)
                    {
                        p.RecoveredAfter = Stopwatch.GetElapsedTime(mark, Stopwatch.GetTimestamp());
                    }

                    break;
                }
                catch (Exception e) when (e is not OutOfMemoryException)
                {
                    // A hub gets no ack and resends the same events after a pause; so does this one.
                    p.Failures++;
                    p.LastError = e.GetType().Name + ": " + e.Message;
                    await Task.Delay(TimeSpan.FromMilliseconds(100), CancellationToken.None);
                }
            }
        }
    }

    private static string HubOf(string serial) => "HUB-" + serial;
}

/// <summary>What one simulated pump did. Written by its own loop only.</summary>
public sealed class PumpProgress
{
    /// <summary>Highest committedSeq acknowledged to the hub.</summary>
    public long CommittedSeq { get; set; }
    /// <summary>Highest seq ever sent.</summary>
    public long HighestSent { get; set; }
    /// <summary>Calls made, including resends.</summary>
    public long Attempts { get; set; }
    /// <summary>Acknowledged calls.</summary>
    public long Acks { get; set; }
    /// <summary>Failed or timed-out calls (each followed by a resend).</summary>
    public long Failures { get; set; }
    /// <summary>Events the grain reported as newly stored.</summary>
    public long Stored { get; set; }
    /// <summary>Events the grain recognised as already stored (resends of batches whose ack was lost).</summary>
    public long Duplicates { get; set; }
    /// <summary>Events refused by domain rules (expected 0).</summary>
    public long Rejections { get; set; }
    /// <summary>From the fault to the first ack of a call started after it.</summary>
    public TimeSpan? RecoveredAfter { get; set; }
    /// <summary>Last failure, for diagnosis.</summary>
    public string? LastError { get; set; }
}
