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
    private readonly ServerSplit _split;
    private readonly Stopwatch _wall = Stopwatch.StartNew();

    private CpuMeter(int postmaster, TimeSpan client, ServerSplit split)
    {
        _postmaster = postmaster;
        _client = client;
        _split = split;
        _serverSeconds = split.Total;
    }

    /// <summary>Takes the readings before a run; the server is found as the parent of one of its backends.</summary>
    public static async Task<CpuMeter> StartAsync(NpgsqlDataSource ds)
    {
        await using var cmd = ds.CreateCommand("SELECT pg_backend_pid()");
        var backend = (int)(await cmd.ExecuteScalarAsync())!;
        var postmaster = ReadStat(backend) is { } s ? s.Ppid : 0;
        return new CpuMeter(postmaster, Process.GetCurrentProcess().TotalProcessorTime, Split(postmaster));
    }

    /// <summary>µs of CPU per event in the benchmark process and in the server since <see cref="StartAsync"/>, and the cores busy.</summary>
    public string PerEvent(long events)
    {
        var wall = _wall.Elapsed.TotalSeconds;
        var client = (Process.GetCurrentProcess().TotalProcessorTime - _client).TotalSeconds;
        var now = Split(_postmaster);
        var server = now.Total - _serverSeconds;
        // The server's CPU by process kind (issue 14, h14x): client backends (the statements), background processes (WAL
        // writer, checkpointer, background writer, autovacuum), and processes that exited meanwhile (their time is the
        // postmaster's reaped children's: closed pool connections, autovacuum workers) with the postmaster's own.
        return string.Create(CultureInfo.InvariantCulture,
            $"CPU µs/event: client {client * 1e6 / events:F2}, server {server * 1e6 / events:F2} (backends {(now.Backends - _split.Backends) * 1e6 / events:F2}, background {(now.Background - _split.Background) * 1e6 / events:F2}, exited {(now.Exited - _split.Exited) * 1e6 / events:F2}), sum {(client + server) * 1e6 / events:F2}; cores busy {(client + server) / wall:F2} (client {client / wall:F2}, server {server / wall:F2})");
    }

    // The postmaster's own time and its reaped children's, plus each live child's, by kind. A backend or worker that
    // exits between two readings moves from its kind to Exited; the total is right either way.
    private static ServerSplit Split(int postmaster)
    {
        if (postmaster == 0 || ReadStat(postmaster) is not { } pm)
        {
            return default;
        }

        long backends = 0, background = 0;
        foreach (var dir in Directory.EnumerateDirectories("/proc"))
        {
            if (int.TryParse(Path.GetFileName(dir), out var pid) && pid != postmaster && ReadStat(pid) is { } s && s.Ppid == postmaster)
            {
                if (IsBackend(pid))
                {
                    backends += s.Utime + s.Stime;
                }
                else
                {
                    background += s.Utime + s.Stime;
                }
            }
        }

        return new ServerSplit(backends / TicksPerSecond, background / TicksPerSecond, (pm.Utime + pm.Stime + pm.Cutime + pm.Cstime) / TicksPerSecond);
    }

    // A client backend's title is "postgres: user database host(port) state"; background processes name their role.
    private static bool IsBackend(int pid)
    {
        try
        {
            var title = File.ReadAllText($"/proc/{pid}/cmdline");
            return title.Contains('(', StringComparison.Ordinal) && !title.Contains("autovacuum", StringComparison.Ordinal);
        }
        catch (IOException)
        {
            return false;
        }
        catch (UnauthorizedAccessException)
        {
            return false;
        }
    }

    private readonly record struct ServerSplit(double Backends, double Background, double Exited)
    {
        public double Total => Backends + Background + Exited;
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
