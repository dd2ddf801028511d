using System.Diagnostics;
using System.Globalization;
using System.Text;

namespace PumpFleet.Failover;

/// <summary>
/// The gateway as a real child process (<c>dotnet PumpFleet.Gateway.Host.dll</c>): an Orleans client of the AdoNet cluster
/// with its embedded MQTT broker on a loopback port. It runs in the Development environment for the dev fleet secret
/// and auto-pairing, so the simulated hubs need no provisioning step: the scenario is about faults, not enrolment.
/// </summary>
public sealed class GatewayProcess : IAsyncDisposable
{
    /// <summary>Fleet secret the hubs derive their passwords from (see <see cref="MqttHubLoad"/>).</summary>
    public const string FleetSecret = "failover-fleet";

    private readonly Process _process;
    private readonly StringBuilder _log = new();

    private GatewayProcess(Process process, int mqttPort, int httpPort)
    {
        _process = process;
        MqttPort = mqttPort;
        HttpPort = httpPort;
    }

    /// <summary>Plain MQTT port of the embedded broker.</summary>
    public int MqttPort { get; }

    /// <summary>Port of <c>/health/ready</c> and <c>/metrics</c>.</summary>
    public int HttpPort { get; }

    /// <summary>OS process id.</summary>
    public int Pid => _process.Id;

    /// <summary>Whether the process has exited.</summary>
    public bool HasExited => _process.HasExited;

    /// <summary>What the process wrote so far, for diagnosis.</summary>
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

    /// <summary>Starts a gateway for the cluster <paramref name="clusterId"/> on the given ports.</summary>
    public static GatewayProcess Start(string gatewayDll, string connectionString, string clusterId, int mqttPort, int httpPort,
        IReadOnlyDictionary<string, string>? settings = null)
    {
        var psi = new ProcessStartInfo("dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            WorkingDirectory = Path.GetDirectoryName(gatewayDll)!,
        };
        psi.ArgumentList.Add(gatewayDll);
        var env = psi.Environment;
        env["ASPNETCORE_ENVIRONMENT"] = "Development";
        env["DOTNET_ENVIRONMENT"] = "Development";
        env["ConnectionStrings__PumpFleet"] = connectionString;
        env["PumpFleet__Clustering"] = "AdoNet";
        env["Orleans__ClusterId"] = clusterId;
        env["Orleans__ServiceId"] = "pumpfleet-failover";
        env["Gateway__Mqtt__Port"] = mqttPort.ToString(CultureInfo.InvariantCulture);
        env["Gateway__Mqtt__BindAddress"] = "127.0.0.1";
        env["Gateway__Hubs__DevFleetSecret"] = FleetSecret;
        env["Gateway__Hubs__AutoPairOnFirstBatch"] = "true";
        env["Urls"] = $"http://127.0.0.1:{httpPort}";
        env["DOTNET_gcServer"] = "0";
        env["Logging__LogLevel__Default"] = "Warning";
        env["Logging__LogLevel__PumpFleet"] = "Warning";
        foreach (var (key, value) in settings ?? new Dictionary<string, string>())
        {
            env[key] = value;
        }

        var process = Process.Start(psi) ?? throw new InvalidOperationException("dotnet did not start");
        var gateway = new GatewayProcess(process, mqttPort, httpPort);
        process.OutputDataReceived += (_, e) => gateway.Append(e.Data);
        process.ErrorDataReceived += (_, e) => gateway.Append(e.Data);
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return gateway;
    }

    /// <summary>True once <c>/health/ready</c> answers 200 (the cluster client is connected).</summary>
    public async Task<bool> IsReadyAsync(HttpClient http)
    {
        try
        {
            return (await http.GetAsync(new Uri($"http://127.0.0.1:{HttpPort}/health/ready"))).IsSuccessStatusCode;
        }
        catch (HttpRequestException)
        {
            return false;
        }
    }

    /// <summary>Hard kill: SIGKILL, no shutdown code runs, in-flight messages are neither acknowledged nor drained.</summary>
    public void Kill() => _process.Kill(entireProcessTree: false);

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
