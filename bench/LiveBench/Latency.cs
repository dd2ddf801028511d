using System.Text.Json;

namespace PumpFleet.LiveBench;

/// <summary>Commit → page latencies from what each page recorded.</summary>
internal static class Latency
{
    /// <summary>Waits until every page recorded every probe, or <paramref name="timeout"/> passed (late is measured, not missing).</summary>
    public static async Task WaitForAllAsync(IReadOnlyList<OpenPage> pages, IReadOnlyList<SentProbe> sent, TimeSpan timeout)
    {
        var keys = JsonSerializer.Serialize(sent.Select(s => s.Key));
        var sw = System.Diagnostics.Stopwatch.StartNew();
        foreach (var p in pages)
        {
            while (sw.Elapsed < timeout
                   && !await p.Page.EvaluateAsync<bool>($"(() => {{ const got = new Set(window.__pfArrivals.map(a => a[0])); return {keys}.every(k => got.has(k)); }})()"))
            {
                await Task.Delay(250);
            }
        }
    }

    /// <summary>Every (probe, page) latency, per probe the slowest page's, and the deliveries that never came.</summary>
    public static async Task<(double[] All, double[] Worst, int Missing)> CollectAsync(IReadOnlyList<OpenPage> pages, IReadOnlyList<SentProbe> sent)
    {
        var all = new List<double>();
        var worst = new double[sent.Count];
        var reachedAll = new int[sent.Count];
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
                worst[i] = reachedAll[i] == 0 ? ms : Math.Max(worst[i], ms);
                reachedAll[i]++;
            }
        }

        // A probe that missed a page has no "slowest page" figure: it is counted in missing instead.
        return ([.. all.Order()], [.. worst.Where((_, i) => reachedAll[i] == pages.Count).Order()], missing);
    }
}
