using System.Diagnostics;
using System.Globalization;
using System.Text.RegularExpressions;

/// <summary>
/// The platform's live objects through <c>dotnet-gcdump</c>: <c>collect</c> makes the runtime do a full blocking
/// collection and walk what survives, <c>report</c> sums it by type. The run keeps the dump files in its directory
/// only until it ends; the totals and the largest types go to the console.
/// </summary>
internal static partial class LiveHeap
{
    internal sealed record Totals(double Bytes, double Objects, IReadOnlyDictionary<string, double> ObjectsByType);

    public static async Task<Totals?> DumpAsync(string tool, int pid, string dir, string label, Action<string> log)
    {
        var file = Path.Combine(dir, $"{label}.gcdump");
        var sw = Stopwatch.StartNew();
        var (code, output) = await RunAsync(tool, ["collect", "-p", pid.ToString(CultureInfo.InvariantCulture), "-o", file]);
        if (code != 0 || !File.Exists(file))
        {
            log($"dotnet-gcdump collect ({label}) failed with exit code {code}: {output.Trim()}");
            return null;
        }

        var collectTime = sw.Elapsed;
        (code, output) = await RunAsync(tool, ["report", file]);
        if (code != 0)
        {
            log($"dotnet-gcdump report ({label}) failed with exit code {code}: {output.Trim()}");
            return null;
        }

        var lines = output.Split('\n', StringSplitOptions.TrimEntries);
        var bytes = Total(lines, "GC Heap bytes");
        var objects = Total(lines, "GC Heap objects");
        var byType = ByType(lines);
        log(string.Create(CultureInfo.InvariantCulture, $"Live heap ({label}, dotnet-gcdump, {collectTime.TotalSeconds:N1} s): {bytes / 1048576.0:N0} MiB in {objects:N0} objects; the most numerous types:"));
        foreach (var (type, n) in byType.OrderByDescending(t => t.Value).Take(12))
        {
            log(string.Create(CultureInfo.InvariantCulture, $"  {n,12:N0}  {type}"));
        }

        if (objects >= ObjectLimit)
        {
            log(string.Create(CultureInfo.InvariantCulture, $"  (the dump stopped at dotnet-gcdump's limit of about {ObjectLimit:N0} objects: its totals and counts are a part of the heap, not all of it)"));
        }

        if (output.Contains("lossy", StringComparison.OrdinalIgnoreCase))
        {
            log("  (dotnet-gcdump warned that its buffering is lossy on this runtime: on a large heap the dump can miss objects, so the total is a lower bound)");
        }

        return new Totals(bytes, objects, byType);
    }

    /// <summary>
    /// Whether the dump's object graph stopped at dotnet-gcdump's limit of about ten million objects instead of holding
    /// the whole heap: the million-pump run's end dump came back with 10,000,004 objects and 0.62 pump states per
    /// active pump (each active pump holds one), so its totals and counts were a part of the heap, not all of it.
    /// </summary>
    public static bool Truncated(Totals totals) => totals.Objects >= ObjectLimit;

    // Observed, not documented by the tool: dumps of larger heaps came back with this many objects and a few more.
    private const double ObjectLimit = 10_000_000;

    /// <summary>
    /// What grew between two dumps, by type, in objects per active pump: which objects a pump keeps. Counts, not bytes:
    /// the report's byte column is not a per-type total for small objects (its rows do not add up to the heap), its
    /// counts are.
    /// </summary>
    public static void PrintGrowth(Totals start, Totals end, double activePumps, int top, Action<string> log)
    {
        log(string.Create(CultureInfo.InvariantCulture, $"Live objects per additional active pump by type (end − first dump, {activePumps:N0} more active pumps), the {top} that grew most{(Truncated(start) || Truncated(end) ? " (a dump stopped at the tool's object limit: counts are too low)" : "")}:"));
        log("| type | objects per active pump |");
        log("|---|---:|");
        foreach (var (type, n) in end.ObjectsByType
                     .Select(t => (t.Key, Growth: t.Value - start.ObjectsByType.GetValueOrDefault(t.Key)))
                     .OrderByDescending(t => t.Growth).Take(top))
        {
            log(string.Create(CultureInfo.InvariantCulture, $"| `{type}` | {n / Math.Max(1, activePumps):N2} |"));
        }
    }

    // The report's rows are "bytes  count  type [(Bytes > N)]  [assembly]", one per type and size class: counts summed by type.
    private static Dictionary<string, double> ByType(string[] lines)
    {
        var byType = new Dictionary<string, double>(StringComparer.Ordinal);
        foreach (var line in lines.SkipWhile(l => !l.StartsWith("Object Bytes", StringComparison.Ordinal)).Skip(1))
        {
            var m = Row().Match(line);
            if (m.Success)
            {
                var type = m.Groups["type"].Value.Trim();
                var b = double.Parse(m.Groups["count"].Value.Replace(",", "", StringComparison.Ordinal), CultureInfo.InvariantCulture);
                byType[type] = byType.GetValueOrDefault(type) + b;
            }
        }

        return byType;
    }

    private static double Total(string[] lines, string label)
    {
        foreach (var line in lines)
        {
            if (line.EndsWith(label, StringComparison.Ordinal))
            {
                return double.Parse(Numbers().Match(line).Value.Replace(",", "", StringComparison.Ordinal), CultureInfo.InvariantCulture);
            }
        }

        return double.NaN;
    }

    private static async Task<(int Code, string Output)> RunAsync(string tool, string[] args)
    {
        var psi = new ProcessStartInfo(tool) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in args)
        {
            psi.ArgumentList.Add(a);
        }

        using var p = Process.Start(psi)!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        await p.WaitForExitAsync();
        return (p.ExitCode, await stdout + await stderr);
    }

    [GeneratedRegex(@"^[\d,]+\s+(?<count>[\d,]+)\s+(?<type>.+?)(\s+\(Bytes > \w+\))?\s+\[[^\]]*\]$")]
    private static partial Regex Row();

    [GeneratedRegex(@"[\d,]+")]
    private static partial Regex Numbers();
}
