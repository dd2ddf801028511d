using System.Diagnostics;
using System.Globalization;
using System.Text;

namespace PumpFleet.Failover;

/// <summary>
/// A <c>dotnet &lt;dll&gt;</c> child process configured by environment variables only, with its standard output and
/// error captured for diagnosis, a hard kill (SIGKILL), a graceful stop (SIGTERM) and disposal that never leaves it
/// running. The silo and gateway processes of the scenarios are thin wrappers around it.
/// </summary>
public sealed class ChildProcess : IAsyncDisposable
{
    private readonly Process _process;
    private readonly StringBuilder _log = new();

    private ChildProcess(Process process) => _process = process;

    /// <summary>OS process id.</summary>
    public int Pid => _process.Id;

    /// <summary>Whether the process has exited.</summary>
    public bool HasExited => _process.HasExited;

    /// <summary>Exit code (only after exit).</summary>
    public int ExitCode => _process.ExitCode;

    /// <summary>What the process wrote so far (stdout and stderr, interleaved as received).</summary>
    public string Log
    {
        get
        {
            lock (_log)
            {
                return _log.ToString();
            }
        }
    }

    /// <summary>
    /// Starts <c>dotnet <paramref name="dll"/></c> with <paramref name="environment"/> added to this process's
    /// environment (later entries win), in <paramref name="workingDirectory"/> when given.
    /// </summary>
    public static ChildProcess Start(string dll, IEnumerable<KeyValuePair<string, string>> environment, string? workingDirectory = null)
    {
        ArgumentNullException.ThrowIfNull(environment);
        var psi = new ProcessStartInfo("dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        if (workingDirectory is not null)
        {
            psi.WorkingDirectory = workingDirectory;
        }

        psi.ArgumentList.Add(dll);
        foreach (var (key, value) in environment)
        {
            psi.Environment[key] = value;
        }

        var process = Process.Start(psi) ?? throw new InvalidOperationException("dotnet did not start");
        var child = new ChildProcess(process);
        process.OutputDataReceived += (_, e) => child.Append(e.Data);
        process.ErrorDataReceived += (_, e) => child.Append(e.Data);
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return child;
    }

    /// <summary>Hard kill: SIGKILL, no shutdown code runs (a crash, an OOM kill, a lost node).</summary>
    public void Kill() => _process.Kill(entireProcessTree: false);

    /// <summary>Graceful stop: SIGTERM, as Kubernetes sends; the host runs its shutdown.</summary>
    public async Task TerminateAsync()
    {
        using var kill = Process.Start(new ProcessStartInfo("kill") { ArgumentList = { "-TERM", Pid.ToString(CultureInfo.InvariantCulture) }, UseShellExecute = false })
            ?? throw new InvalidOperationException("kill did not start");
        await kill.WaitForExitAsync();
    }

    /// <summary>Waits for the process to exit.</summary>
    public Task WaitForExitAsync(CancellationToken ct) => _process.WaitForExitAsync(ct);

    /// <inheritdoc />
    public async ValueTask DisposeAsync()
    {
        if (!_process.HasExited)
        {
            _process.Kill();
            await _process.WaitForExitAsync();
        }

        _process.Dispose();
    }

    private void Append(string? line)
    {
        if (line is null)
        {
            return;
        }

        lock (_log)
        {
            _log.AppendLine(line);
        }
    }
}
