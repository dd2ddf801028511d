using System.Diagnostics;
using System.Net;
using System.Text;

namespace PumpFleet.TestSupport.Monitoring;

/// <summary>
/// A server binary of the Debian monitoring packages (prometheus, prometheus-alertmanager) started privately for a
/// test: its own temporary directory, a free loopback port, output kept for the failure message, killed on dispose.
/// </summary>
public sealed class MonitoringProcess : IAsyncDisposable
{
    private readonly Process _process;
    private readonly StringBuilder _output = new();

    private MonitoringProcess(Process process, string directory, int port)
    {
        _process = process;
        Directory = directory;
        Port = port;
        BaseAddress = new Uri($"http://127.0.0.1:{port}/");
    }

    /// <summary>The private working directory (configuration, storage).</summary>
    public string Directory { get; }

    /// <summary>The loopback port it listens on.</summary>
    public int Port { get; }

    /// <summary><c>http://127.0.0.1:{Port}/</c>.</summary>
    public Uri BaseAddress { get; }

    /// <summary>Everything the process printed so far (for failure messages).</summary>
    public string Output
    {
        get
        {
            lock (_output)
            {
                return _output.ToString();
            }
        }
    }

    /// <summary>
    /// Starts <paramref name="executable"/> (an absolute path, or a name looked up in /usr/bin and /usr/local/bin) with
    /// arguments built from its directory and port, and waits until <c>GET /-/ready</c> answers 200.
    /// </summary>
    public static async Task<MonitoringProcess> StartAsync(string executable, string installHint, string directory,
        Func<string, int, IEnumerable<string>> arguments, CancellationToken ct)
    {
        var path = Resolve(executable) ?? throw new InvalidOperationException($"{executable} was not found: {installHint}");
        var port = Ports.Free();
        var psi = new ProcessStartInfo(path)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            WorkingDirectory = directory,
        };
        foreach (var a in arguments(directory, port))
        {
            psi.ArgumentList.Add(a);
        }

        var process = new Process { StartInfo = psi };
        var server = new MonitoringProcess(process, directory, port);
        process.OutputDataReceived += (_, e) => server.Append(e.Data);
        process.ErrorDataReceived += (_, e) => server.Append(e.Data);
        process.Start();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        try
        {
            using var http = new HttpClient { BaseAddress = server.BaseAddress, Timeout = TimeSpan.FromSeconds(5) };
            await Eventually.TrueAsync(async () =>
            {
                if (process.HasExited)
                {
                    throw new InvalidOperationException($"{executable} exited with {process.ExitCode}:\n{server.Output}");
                }

                using var r = await http.GetAsync(new Uri("-/ready", UriKind.Relative), ct);
                return r.StatusCode == HttpStatusCode.OK;
            }, TimeSpan.FromSeconds(60), $"{executable} ready on {server.BaseAddress}", TimeSpan.FromMilliseconds(100));
        }
        catch
        {
            await server.DisposeAsync();
            throw;
        }

        return server;
    }

    /// <summary>A new empty temporary directory for one server.</summary>
    public static string NewDirectory(string prefix)
    {
        var dir = Path.Combine(Path.GetTempPath(), $"pumpfleet-{prefix}-{Guid.NewGuid():N}");
        System.IO.Directory.CreateDirectory(dir);
        return dir;
    }

    private void Append(string? line)
    {
        if (line is null)
        {
            return;
        }

        lock (_output)
        {
            // Bounded: a long test must not grow the log without limit.
            if (_output.Length < 200_000)
            {
                _output.AppendLine(line);
            }
        }
    }

    private static string? Resolve(string executable)
    {
        if (Path.IsPathRooted(executable))
        {
            return File.Exists(executable) ? executable : null;
        }

        foreach (var dir in (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':').Append("/usr/bin").Append("/usr/local/bin"))
        {
            var candidate = Path.Combine(dir, executable);
            if (dir.Length > 0 && File.Exists(candidate))
            {
                return candidate;
            }
        }

        return null;
    }


    /// <inheritdoc />
    public async ValueTask DisposeAsync()
    {
        try
        {
            if (!_process.HasExited)
            {
                _process.Kill(entireProcessTree: true);
                await _process.WaitForExitAsync(CancellationToken.None);
            }
        }
        catch (InvalidOperationException)
        {
            // never started or already gone
        }

        _process.Dispose();
        try
        {
            System.IO.Directory.Delete(Directory, recursive: true);
        }
        catch (IOException)
        {
            // a file still held open: the temporary directory is left for the OS to clean
        }
    }
}
