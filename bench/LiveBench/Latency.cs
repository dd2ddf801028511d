using System.Text.Json;

namespace PumpFleet.LiveBench;

/// <summary>
/// One (probe, page) delivery split where the server stamped it (Dashboard:LiveTimings; NaN where a stamp is missing):
/// commit → the queue's read started (NOTIFY and the pulling agent's next turn), the read (the partition query),
/// read → the live feed's <c>OnNextAsync</c> (queue cache, pulling agent, delivery to the client), feed → the
/// browser's stream took it for writing (the browser's channel), write → the page's dispatch (SSE write, socket,
/// Chromium). <paramref name="HeldBack"/>: the queue's read before the one that returned the event started after the
/// commit, so it did not return it (held behind an older open transaction, the gap-safe horizon, or beyond a full
/// page); otherwise the event waited for the queue's next read.
/// </summary>
internal sealed record Segments(double ToReadStart, double Read, double ToFeed, double ToWrite, double ToPage, bool HeldBack);

/// <summary>Commit → page latencies from what each page recorded.</summary>
internal static class Latency
{
    /// <summary>Names of <see cref="Segments"/>' parts, in order, for the breakdown table.</summary>
    public static readonly string[] SegmentNames =
    [
        "commit → queue read starts (NOTIFY, agent's next turn)",
        "the queue's read (partition query)",
        "read → live feed's OnNextAsync (cache, agent, delivery)",
        "feed → browser stream takes it (channel)",
        "stream → page dispatch (SSE write, socket, Chromium)",
    ];

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

    /// <summary>Every (probe, page) latency, per probe the slowest page's, the deliveries that never came, and each delivery's segments.</summary>
    public static async Task<(double[] All, double[] Worst, int Missing, List<Segments> Segments)> CollectAsync(IReadOnlyList<OpenPage> pages, IReadOnlyList<SentProbe> sent)
    {
        var all = new List<double>();
        var segments = new List<Segments>();
        var worst = new double[sent.Count];
        var reachedAll = new int[sent.Count];
        var missing = 0;
        foreach (var p in pages)
        {
            var json = await p.Page.EvaluateAsync<string>("JSON.stringify(window.__pfArrivals)");
            var arrivals = new Dictionary<string, (double At, JsonElement Trace)>(StringComparer.Ordinal);
            foreach (var a in JsonSerializer.Deserialize<JsonElement[][]>(json)!)
            {
                arrivals.TryAdd(a[0].GetString()!, (a[1].GetDouble(), a.Length > 2 ? a[2] : default));
            }

            for (var i = 0; i < sent.Count; i++)
            {
                if (!arrivals.TryGetValue(sent[i].Key, out var arrival))
                {
                    missing++;
                    continue;
                }

                var at = arrival.At - p.OffsetMs;
                var ms = at - sent[i].CommittedMs;
                all.Add(ms);
                worst[i] = reachedAll[i] == 0 ? ms : Math.Max(worst[i], ms);
                reachedAll[i]++;
                if (arrival.Trace.ValueKind == JsonValueKind.Object)
                {
                    var previous = Stamp(arrival.Trace, "previousReadStartedMs");
                    var readStarted = Stamp(arrival.Trace, "readStartedMs");
                    var read = Stamp(arrival.Trace, "readMs");
                    var feed = Stamp(arrival.Trace, "feedMs");
                    var write = Stamp(arrival.Trace, "writeMs");
                    segments.Add(new Segments(readStarted - sent[i].CommittedMs, read - readStarted, feed - read, write - feed, at - write, previous > sent[i].CommittedMs));
                }
            }
        }

        // A probe that missed a page has no "slowest page" figure: it is counted in missing instead.
        return ([.. all.Order()], [.. worst.Where((_, i) => reachedAll[i] == pages.Count).Order()], missing, segments);
    }

    private static double Stamp(JsonElement trace, string name) =>
        trace.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.Number ? v.GetDouble() : double.NaN;
}

/// <summary>Part 1's figures of one (configuration, background load), over every round.</summary>
internal sealed class LatencyResult
{
    public List<double> All { get; } = [];

    public List<double> Worst { get; } = [];

    public List<double> Append { get; } = [];

    public List<Segments> Segments { get; } = [];

    public int Missing { get; set; }
}
