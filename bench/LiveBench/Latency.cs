using System.Text.Json;

namespace PumpFleet.LiveBench;

/// <summary>Commit → page latencies from what each page recorded.</summary>
internal static class Latency
{
    /// <summary>Every (probe, page) latency, per probe the slowest page's, and the deliveries that never came.</summary>
    public static async Task<(double[] All, double[] Worst, int Missing)> CollectAsync(IReadOnlyList<OpenPage> pages, IReadOnlyList<SentProbe> sent)
    {
        var all = new List<double>();
        var worst = new double[sent.Count];
        var missing = 0;
        foreach (var p in pages)
        {
            var json = await p.Page.EvaluateAsync<string>("JSON.stringify(window.__pfArrivals)");
            var arrivals = new Dictionary<string, double>(StringComparer.Ordinal);
            foreach (var a in JsonSerializer.Deserialize<JsonElement[][]>(json)!)
            {
                arrivals.TryAdd(a[0].GetString()!, a[1].GetDouble());
            }

            for (var i = 0; i < sent.Count; i++)
            {
                if (!arrivals.TryGetValue(sent[i].Key, out var at))
                {
                    missing++;
                    continue;
                }

                var ms = at - p.OffsetMs - sent[i].CommittedMs;
                all.Add(ms);
                worst[i] = Math.Max(worst[i], ms);
            }
        }

        return ([.. all.Order()], [.. worst.Order()], missing);
    }
}
