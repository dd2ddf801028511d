using System.Diagnostics;

namespace PumpFleet.TestSupport.Monitoring;

/// <summary><c>promtool</c> (Debian package prometheus) as the tests run it.</summary>
public static class Promtool
{
    /// <summary>
    /// Runs <c>promtool check metrics</c> on a scrape: exit 0 when it parses and passes the lint, 1 on a format error,
    /// 3 on lint findings (listed in the output).
    /// </summary>
    public static async Task<(int Code, string Output)> CheckMetricsAsync(string scrape, CancellationToken ct)
    {
        var promtool = Environment.GetEnvironmentVariable("PROMTOOL") is { Length: > 0 } p ? p : "promtool";
        var psi = new ProcessStartInfo(promtool, ["check", "metrics"])
        {
            RedirectStandardInput = true, RedirectStandardOutput = true, RedirectStandardError = true,
        };
        Process proc;
        try
        {
            proc = Process.Start(psi)!;
        }
        catch (System.ComponentModel.Win32Exception e)
        {
            throw new InvalidOperationException("promtool was not found: run scripts/install-promtool.sh (scripts/test.sh does) or set PROMTOOL.", e);
        }

        using (proc)
        {
            var stdout = proc.StandardOutput.ReadToEndAsync(ct);
            var stderr = proc.StandardError.ReadToEndAsync(ct);
            await proc.StandardInput.WriteAsync(scrape);
            proc.StandardInput.Close();
            await proc.WaitForExitAsync(ct);
            return (proc.ExitCode, await stdout + await stderr);
        }
    }
}
