using System.Diagnostics;
using System.Globalization;
using Npgsql;

namespace PumpFleet.ProjectionBench;

/// <summary>
/// CPU time of the benchmark's own process and of its private PostgreSQL server (the postmaster, its live children and
/// the children it has reaped), between two readings (issue 14, h14t). On a 2-core machine four workers are CPU-bound,
/// so what decides their catch-up is CPU per event in both processes, not round trips; this splits it.
/// Linux only (/proc); elsewhere the server's share reads as zero.
/// </summary>
internal sealed class CpuMeter
{
    private static readonly double TicksPerSecond = 100; // USER_HZ on Linux

    private readonly int _postmaster;
    private readonly TimeSpan _client;
    private readonly double _serverSeconds;
    private readonly Stopwatch _wall = Stopwatch.StartNew();

    private CpuMeter(int postmaster, TimeSpan client, double serverSeconds)
    {
        _postmaster = postmaster;
        _client = client;
        _serverSeconds = serverSeconds;
    }

    /// <summary>Takes the readings before a run; the server is found as the parent of one of its backends.</summary>
    public static async Task<CpuMeter> StartAsync(NpgsqlDataSource ds)
    {
        await using var cmd = ds.CreateCommand("SELECT pg_backend_pid()");
        var backend = (int)(await cmd.ExecuteScalarAsync())!;
        var postmaster = ReadStat(backend) is { } s ? s.Ppid : 0;
        return new CpuMeter(postmaster, Process.GetCurrentProcess().TotalProcessorTime, ServerSeconds(postmaster));
    }

    /// <summary>µs of CPU per event in the benchmark process and in the server since <see cref="StartAsync"/>, and the cores busy.</summary>
    public string PerEvent(long events)
    {
        var wall = _wall.Elapsed.TotalSeconds;
        var client = (Process.GetCurrentProcess().TotalProcessorTime - _client).TotalSeconds;
        var server = ServerSeconds(_postmaster) - _serverSeconds;
        return string.Create(CultureInfo.InvariantCulture,
            $"CPU µs/event: client {client * 1e6 / events:F2}, server {server * 1e6 / events:F2}, sum {(client + server) * 1e6 / events:F2}; cores busy {(client + server) / wall:F2} (client {client / wall:F2}, server {server / wall:F2})");
    }

    // The postmaster's own time and its reaped children's, plus each live child's.
    private static double ServerSeconds(int postmaster)
    {
        if (postmaster == 0 || ReadStat(postmaster) is not { } pm)
        {
            return 0;
        }

        var ticks = pm.Utime + pm.Stime + pm.Cutime + pm.Cstime;
        foreach (var dir in Directory.EnumerateDirectories("/proc"))
        {
            if (int.TryParse(Path.GetFileName(dir), out var pid) && pid != postmaster && ReadStat(pid) is { } s && s.Ppid == postmaster)
            {
                ticks += s.Utime + s.Stime;
            }
        }

        return ticks / TicksPerSecond;
    }

    private static (int Ppid, long Utime, long Stime, long Cutime, long Cstime)? ReadStat(int pid)
    {
        try
        {
            var text = File.ReadAllText($"/proc/{pid}/stat");
            // Fields after the command name (which may hold spaces) in parentheses: state is field 3, ppid 4, utime 14.
            var f = text[(text.LastIndexOf(')') + 2)..].Split(' ');
            return (int.Parse(f[1], CultureInfo.InvariantCulture), long.Parse(f[11], CultureInfo.InvariantCulture),
                long.Parse(f[12], CultureInfo.InvariantCulture), long.Parse(f[13], CultureInfo.InvariantCulture),
                long.Parse(f[14], CultureInfo.InvariantCulture));
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or FormatException or IndexOutOfRangeException)
        {
            return null;
        }
    }
}
