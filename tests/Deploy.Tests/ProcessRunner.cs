using System.Diagnostics;
using System.Text;

namespace PumpFleet.Deploy.Tests;

internal sealed record ProcessResult(int ExitCode, string StdOut, string StdErr)
{
    public string Describe(string what) => $"{what} exited {ExitCode}.\nstdout:\n{StdOut}\nstderr:\n{StdErr}";
}

internal static class ProcessRunner
{
    // Generous: helm and promtool finish in well under a second here, but CI machines share two cores.
    private static readonly TimeSpan s_timeout = TimeSpan.FromMinutes(2);

    public static ProcessResult Run(string fileName, IEnumerable<string> arguments, string? workingDirectory = null)
    {
        var info = new ProcessStartInfo(fileName)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            WorkingDirectory = workingDirectory ?? Repo.Root,
        };
        foreach (var argument in arguments)
        {
            info.ArgumentList.Add(argument);
        }

        var stdout = new StringBuilder();
        var stderr = new StringBuilder();
        using var process = new Process { StartInfo = info };
        // Both streams are drained through events: reading one to the end while the other fills its pipe deadlocks.
        process.OutputDataReceived += (_, e) => { if (e.Data is not null) { lock (stdout) { stdout.AppendLine(e.Data); } } };
        process.ErrorDataReceived += (_, e) => { if (e.Data is not null) { lock (stderr) { stderr.AppendLine(e.Data); } } };
        process.Start();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        if (!process.WaitForExit(s_timeout))
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException($"{fileName} {string.Join(' ', info.ArgumentList)} did not finish within {s_timeout}.");
        }

        // The parameterless overload waits until the redirected streams are fully read.
        process.WaitForExit();
        return new ProcessResult(process.ExitCode, stdout.ToString(), stderr.ToString());
    }
}
