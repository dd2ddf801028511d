using System.Diagnostics;
using System.Globalization;
using JasperFx.Events;
using Microsoft.Extensions.Logging.Abstractions;
using Npgsql;
using PumpFleet.EventStore;

namespace PumpFleet.EventStoreComparison;

/// <summary>Start-up cost and memory of one store, measured in a fresh child process.</summary>
public sealed record StartupResult(string Kind, double ReadyMs, double FirstAppendMs, double WorkingSetMb, double HeapMb);

/// <summary>
/// Runs this executable again as a child (<c>--child KIND CONNECTION</c>) that does only one store's start-up, a first
/// append and 199 more, then reports its timings and memory, so no store pays for the other's loaded code.
/// </summary>
public static class StartupProbe
{
    private const int Appends = 200;

    private static readonly (string Kind, string Name)[] Kinds =
    [
        ("ours", "our store (migrator + NpgsqlEventStore)"),
        ("marten", "Marten 9.58 Quick (defaults: runtime code generation, AutoCreate.All)"),
    ];

    /// <summary>Parent side: <paramref name="runs"/> children per store, interleaved; medians.</summary>
    public static async Task<IReadOnlyList<StartupResult>> RunAsync(string cs, int runs, Action<string> log)
    {
        var exe = Environment.ProcessPath ?? throw new InvalidOperationException("No process path to start a child from.");
        // Started as 'dotnet X.dll' the process path is the host, which needs the assembly as its first argument.
        var viaHost = Path.GetFileNameWithoutExtension(exe) == "dotnet";
        var all = Kinds.ToDictionary(k => k.Kind, _ => new List<double[]>());
        for (var run = 0; run < runs; run++)
        {
            foreach (var (kind, _) in Kinds)
            {
                var psi = new ProcessStartInfo(exe) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
                var childArgs = new[] { "--child", kind, cs, $"startup-{kind}-{run}" };
                foreach (var a in viaHost ? [typeof(StartupProbe).Assembly.Location, .. childArgs] : childArgs)
                {
                    psi.ArgumentList.Add(a);
                }

                using var p = Process.Start(psi) ?? throw new InvalidOperationException($"Could not start {exe}.");
                var stdout = p.StandardOutput.ReadToEndAsync();
                var stderr = p.StandardError.ReadToEndAsync();
                await p.WaitForExitAsync();
                var line = (await stdout).Split('\n').FirstOrDefault(l => l.StartsWith("RESULT ", StringComparison.Ordinal));
                if (p.ExitCode != 0 || line is null)
                {
                    throw new InvalidOperationException($"Child '{kind}' failed ({p.ExitCode}): {await stdout}{await stderr}");
                }

                var values = line["RESULT ".Length..].Split(' ').Select(x => double.Parse(x, CultureInfo.InvariantCulture)).ToArray();
                all[kind].Add(values);
                log($"start-up run {run + 1}/{runs}, {kind}: ready {values[0]:N0} ms, first append {values[1]:N0} ms, working set {values[2]:N0} MiB, heap {values[3]:N0} MiB");
            }
        }

        return Kinds.Select(k => new StartupResult(
            k.Name,
            Stats.Median(all[k.Kind].Select(v => v[0])),
            Stats.Median(all[k.Kind].Select(v => v[1])),
            Stats.Median(all[k.Kind].Select(v => v[2])),
            Stats.Median(all[k.Kind].Select(v => v[3])))).ToList();
    }

    /// <summary>Child side.</summary>
    public static async Task<int> RunChildAsync(string[] args)
    {
        var (kind, cs, stream) = (args[1], args[2], args[3]);
        var started = Process.GetCurrentProcess().StartTime.ToUniversalTime();
        double SinceStart() => (DateTime.UtcNow - started).TotalMilliseconds;
        Func<long, IReadOnlyList<BenchEvent>, Task> append;
        IAsyncDisposable? owned;
        if (kind == "ours")
        {
            var ds = NpgsqlDataSource.Create(cs);
            await new SchemaMigrator(ds, [], NullLogger<SchemaMigrator>.Instance).MigrateAsync();
            var store = new NpgsqlEventStore(ds);
            append = async (v, b) => await store.AppendAsync(stream, v, b.Select(e => e.Ours).ToList());
            owned = ds;
        }
        else
        {
            var store = MartenStores.Create(cs, "mt_quick", EventAppendMode.Quick);
            append = (v, b) => MartenStores.AppendAsync(store, stream, v, b);
            owned = store;
        }

        var ready = SinceStart();
        long version = 0;
        double firstAppend = 0;
        for (var i = 0; i < Appends; i++)
        {
            var batch = Rows.Make(100, version + 1);
            await append(version, batch);
            version += batch.Length;
            if (firstAppend == 0)
            {
                firstAppend = SinceStart();
            }
        }

        GC.Collect();
        GC.WaitForPendingFinalizers();
        GC.Collect();
        using var self = Process.GetCurrentProcess();
        var workingSet = self.WorkingSet64 / 1048576.0;
        var heap = GC.GetTotalMemory(forceFullCollection: true) / 1048576.0;
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"RESULT {ready:F1} {firstAppend:F1} {workingSet:F1} {heap:F1}"));
        await owned.DisposeAsync();
        return 0;
    }
}
