using System.Globalization;

namespace PumpFleet.Failover;

/// <summary>A silo as a real child process (<c>dotnet PumpFleet.Silo.dll</c>), configured by environment variables only.</summary>
public sealed class SiloProcess : IAsyncDisposable
{
    private readonly ChildProcess _process;

    private SiloProcess(ChildProcess process, int siloPort, int gatewayPort)
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
    public int Pid => _process.Pid;

    /// <summary>Whether the process has exited.</summary>
    public bool HasExited => _process.HasExited;

    /// <summary>Exit code (only after exit).</summary>
    public int ExitCode => _process.ExitCode;

    /// <summary>What the process wrote so far (stdout and stderr), for diagnosis.</summary>
    public string Log => _process.Log;

    /// <summary>Starts a silo in AdoNet mode on loopback with its own ports.</summary>
    public static SiloProcess Start(string siloDll, string connectionString, string clusterId, int siloPort, int gatewayPort)
    {
        var env = new Dictionary<string, string>
        {
            ["ConnectionStrings__PumpFleet"] = connectionString,
            ["PumpFleet__Clustering"] = "AdoNet",
            ["PumpFleet__SiloPort"] = siloPort.ToString(CultureInfo.InvariantCulture),
            ["PumpFleet__GatewayPort"] = gatewayPort.ToString(CultureInfo.InvariantCulture),
            ["PumpFleet__AdvertisedIP"] = "127.0.0.1",
            ["Orleans__ClusterId"] = clusterId,
            ["Orleans__ServiceId"] = "pumpfleet-failover",
            ["Urls"] = "http://127.0.0.1:0",
            ["ASPNETCORE_ENVIRONMENT"] = "Production",
            ["DOTNET_ENVIRONMENT"] = "Production",
            ["DOTNET_SHUTDOWNTIMEOUTSECONDS"] = "30",
            // Three silos, a client and PostgreSQL share a small machine: workstation GC keeps each process light.
            ["DOTNET_gcServer"] = "0",
            ["Logging__LogLevel__Default"] = "Warning",
            ["Logging__LogLevel__Orleans"] = Environment.GetEnvironmentVariable("PUMPFLEET_SILO_ORLEANS_LOG") ?? "Warning",
            ["Logging__LogLevel__PumpFleet"] = "Warning",
            // UTC times on every line, so a silo's log can be laid against the scenario's progress lines.
            ["Logging__Console__FormatterName"] = "simple",
            ["Logging__Console__FormatterOptions__TimestampFormat"] = "HH:mm:ss.fff ",
            ["Logging__Console__FormatterOptions__UseUtcTimestamp"] = "true",
            ["Logging__Console__FormatterOptions__SingleLine"] = "true",
        };
        // PUMPFLEET_SILO_STREAMS_LOG (e.g. Debug) raises the stream provider's and Orleans' streaming categories only,
        // to follow a delivery through a fault without the rest of the silo's noise.
        if (Environment.GetEnvironmentVariable("PUMPFLEET_SILO_STREAMS_LOG") is { Length: > 0 } streams)
        {
            env["Logging__LogLevel__Orleans.Streams"] = streams;
            env["Logging__LogLevel__PumpFleet.Streaming"] = streams;
        }
        return new SiloProcess(ChildProcess.Start(siloDll, env), siloPort, gatewayPort);
    }

    /// <summary>Hard kill: SIGKILL, no shutdown code runs (a crash, an OOM kill, a lost node).</summary>
    public void Kill() => _process.Kill();

    /// <summary>Graceful stop: SIGTERM, as Kubernetes sends; the host stops Orleans, which deactivates grains and leaves.</summary>
    public Task TerminateAsync() => _process.TerminateAsync();

    /// <summary>Waits for the process to exit.</summary>
    public Task WaitForExitAsync(CancellationToken ct) => _process.WaitForExitAsync(ct);

    /// <inheritdoc />
    public ValueTask DisposeAsync() => _process.DisposeAsync();
}
