using System.Diagnostics;
using PumpFleet.Contracts.Events;
using PumpFleet.Contracts.Json;
using PumpFleet.EventStore;

namespace PumpFleet.LiveBench;

/// <summary>One probe: the browser message it should cause and when its append returned (just after the COMMIT).</summary>
internal sealed record SentProbe(string Key, double CommittedMs, double AppendMs);

/// <summary>
/// A pump only the bench writes to: its anomalies open and resolve in turn, one event per append through the event
/// store (the grains' own append path), so each commit time is known to the bench. Each event is an anomaly message
/// on every open page, keyed by anomaly id and status.
/// </summary>
internal sealed class ProbePump(IEventStore store, string serial)
{
    private long _version;
    private int _next;

    public async Task IdentifyAsync()
    {
        var e = new DeviceIdentified
        {
            At = DateTimeOffset.UtcNow,
            Device = new DeviceInfo { Model = "SM2-40", Firmware = "4.2.1", Lot = "L2291", ReservoirCapacityMl = 40 },
        };
        await store.AppendAsync(serial, 0, [new EventToAppend(Guid.NewGuid(), "device.identified", EventJson.Serialize(e), null, null, DateTimeOffset.UtcNow)]);
        _version = 1;
    }

    /// <summary>Probes until every page got one (the live feed subscribed, the pages' streams open).</summary>
    public async Task WarmUpAsync(IReadOnlyList<OpenPage> pages, TimeSpan timeout)
    {
        var sw = Stopwatch.StartNew();
        while (sw.Elapsed < timeout)
        {
            var sent = await RunAsync(1, TimeSpan.Zero, TimeSpan.Zero);
            await Task.Delay(1000);
            var arrived = 0;
            foreach (var p in pages)
            {
                arrived += await p.Page.EvaluateAsync<bool>($"window.__pfArrivals.some(a => a[0] === '{sent[0].Key}')") ? 1 : 0;
            }

            if (arrived == pages.Count)
            {
                return;
            }
        }

        throw new TimeoutException($"No probe reached all {pages.Count} pages within {timeout}.");
    }

    /// <summary><paramref name="count"/> appends, one every <paramref name="interval"/> plus a random jitter up to <paramref name="jitter"/>.</summary>
    public async Task<List<SentProbe>> RunAsync(int count, TimeSpan interval, TimeSpan jitter)
    {
        var sent = new List<SentProbe>(count);
        for (var i = 0; i < count; i++)
        {
            var n = _next++;
            var id = $"{serial}:probe:{n / 2}";
            PumpEvent e = n % 2 == 0
                ? new AnomalyDetected { At = DateTimeOffset.UtcNow, AnomalyId = id, Kind = "flow-stall", Severity = "info", Summary = "live benchmark probe", Evidence = new Dictionary<string, double>() }
                : new AnomalyResolved { At = DateTimeOffset.UtcNow, AnomalyId = id, By = "system", Automatic = true };
            var type = n % 2 == 0 ? "anomaly.detected" : "anomaly.resolved";
            var start = Stopwatch.GetTimestamp();
            await store.AppendAsync(serial, _version, [new EventToAppend(Guid.NewGuid(), type, EventJson.Serialize(e), null, null, DateTimeOffset.UtcNow)]);
            var committed = Clock.NowMs();
            sent.Add(new SentProbe($"{id}:{(n % 2 == 0 ? "open" : "resolved")}", committed, Stopwatch.GetElapsedTime(start).TotalMilliseconds));
            _version++;
            var pause = interval + (jitter * Random.Shared.NextDouble());
            if (pause > TimeSpan.Zero)
            {
                await Task.Delay(pause);
            }
        }

        return sent;
    }
}
