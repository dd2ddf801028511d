using System.Diagnostics;
using System.Text;

namespace PumpFleet.Failover;

/// <summary>A silo as a real child process (<c>dotnet PumpFleet.Silo.dll</c>), configured by environment variables only.</summary>
public sealed class SiloProcess : IAsyncDisposable
{
    private readonly Process _process;
    private readonly StringBuilder _log = new();

    private SiloProcess(Process process, int siloPort, int gatewayPort)
    {
        _process = process;
        SiloPort = siloPort;
        GatewayPort = gatewayPort;
    }

    /// <summary>Silo-to-silo port (identifies the silo in the membership table).</summary>
    public int SiloPort { get; }

    /// <summary>Client gateway port.</summary>
    public int GatewayPort { get; }

    /// <summary>OS process id.</summary>
    public int Pid => _process.Id;

    /// <summary>Whether the process has exited.</summary>
    public bool HasExited => _process.HasExited;

    /// <summary>Exit code (only after exit).</summary>
    public int ExitCode => _process.ExitCode;

    /// <summary>What the process wrote so far (stdout and stderr), for diagnosis.</summary>
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

    /// <summary>Starts a silo in AdoNet mode on loopback with its own ports.</summary>
    public static SiloProcess Start(string siloDll, string connectionString, string clusterId, int siloPort, int gatewayPort)
    {
        var psi = new ProcessStartInfo("dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        psi.ArgumentList.Add(siloDll);
        var env = psi.Environment;
        env["ConnectionStrings__PumpFleet"] = connectionString;
        env["PumpFleet__Clustering"] = "AdoNet";
        env["PumpFleet__SiloPort"] = siloPort.ToString(System.Globalization.CultureInfo.InvariantCulture);
        env["PumpFleet__GatewayPort"] = gatewayPort.ToString(System.Globalization.CultureInfo.InvariantCulture);
        env["PumpFleet__AdvertisedIP"] = "127.0.0.1";
        env["Orleans__ClusterId"] = clusterId;
        env["Orleans__ServiceId"] = "pumpfleet-failover";
        env["Urls"] = "http://127.0.0.1:0";
        env["ASPNETCORE_ENVIRONMENT"] = "Production";
        env["DOTNET_ENVIRONMENT"] = "Production";
        env["DOTNET_SHUTDOWNTIMEOUTSECONDS"] = "30";
        // Three silos, a client and PostgreSQL share a small machine: workstation GC keeps each process light.
        env["DOTNET_gcServer"] = "0";
        env["Logging__LogLevel__Default"] = "Warning";
        env["Logging__LogLevel__Orleans"] = Environment.GetEnvironmentVariable("PUMPFLEET_SILO_ORLEANS_LOG") ?? "Warning";
        env["Logging__LogLevel__PumpFleet"] = "Warning";
        var process = Process.Start(psi) ?? throw new InvalidOperationException("dotnet did not start");
        var silo = new SiloProcess(process, siloPort, gatewayPort);
        process.OutputDataReceived += (_, e) => silo.Append(e.Data);
        process.ErrorDataReceived += (_, e) => silo.Append(e.Data);
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return silo;
    }

    /// <summary>Hard kill: SIGKILL, no shutdown code runs (a crash, an OOM kill, a lost node).</summary>
    public void Kill() => _process.Kill(entireProcessTree: false);

    /// <summary>Graceful stop: SIGTERM, as Kubernetes sends; the host stops Orleans, which deactivates grains and leaves.</summary>
    public async Task TerminateAsync()
    {
        using var kill = Process.Start(new ProcessStartInfo("kill") { ArgumentList = { "-TERM", Pid.ToString(System.Globalization.CultureInfo.InvariantCulture) }, UseShellExecute = false })
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
