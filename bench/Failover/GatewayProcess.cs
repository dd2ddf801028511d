using System.Globalization;

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

    private readonly ChildProcess _process;

    private GatewayProcess(ChildProcess process, int mqttPort, int httpPort)
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
    public int Pid => _process.Pid;

    /// <summary>Whether the process has exited.</summary>
    public bool HasExited => _process.HasExited;

    /// <summary>What the process wrote so far, for diagnosis.</summary>
    public string Log => _process.Log;

    /// <summary>Starts a gateway for the cluster <paramref name="clusterId"/> on the given ports; <paramref name="settings"/> (environment variables) win.</summary>
    public static GatewayProcess Start(string gatewayDll, string connectionString, string clusterId, int mqttPort, int httpPort,
        IReadOnlyDictionary<string, string>? settings = null)
    {
        var env = new Dictionary<string, string>
        {
            ["ASPNETCORE_ENVIRONMENT"] = "Development",
            ["DOTNET_ENVIRONMENT"] = "Development",
            ["ConnectionStrings__PumpFleet"] = connectionString,
            ["PumpFleet__Clustering"] = "AdoNet",
            ["Orleans__ClusterId"] = clusterId,
            ["Orleans__ServiceId"] = "pumpfleet-failover",
            ["Gateway__Mqtt__Port"] = mqttPort.ToString(CultureInfo.InvariantCulture),
            ["Gateway__Mqtt__BindAddress"] = "127.0.0.1",
            ["Gateway__Hubs__DevFleetSecret"] = FleetSecret,
            ["Gateway__Hubs__AutoPairOnFirstBatch"] = "true",
            ["Urls"] = $"http://127.0.0.1:{httpPort}",
            ["DOTNET_gcServer"] = "0",
            ["Logging__LogLevel__Default"] = "Warning",
            ["Logging__LogLevel__PumpFleet"] = "Warning",
        };
        foreach (var (key, value) in settings ?? new Dictionary<string, string>())
        {
            env[key] = value;
        }

        return new GatewayProcess(ChildProcess.Start(gatewayDll, env, Path.GetDirectoryName(gatewayDll)), mqttPort, httpPort);
    }

    /// <summary>True once <c>/health/ready</c> answers 200 (the cluster client is connected).</summary>
    public async Task<bool> IsReadyAsync(HttpClient http)
    {
        ArgumentNullException.ThrowIfNull(http);
        try
        {
            return (await http.GetAsync(new Uri($"http://127.0.0.1:{HttpPort}/health/ready"))).IsSuccessStatusCode;
        }
        catch (HttpRequestException)
        {
            return false;
        }
        catch (TaskCanceledException e) when (e.InnerException is TimeoutException)
        {
            // The client's own timeout: a gateway too busy to answer within it (seen on a loaded machine, 2026-12-01)
            // is not ready yet; the caller's deadline decides when to give up.
            return false;
        }
    }

    /// <summary>Hard kill: SIGKILL, no shutdown code runs, in-flight messages are neither acknowledged nor drained.</summary>
    public void Kill() => _process.Kill();

    /// <summary>Waits for the process to exit.</summary>
    public Task WaitForExitAsync(CancellationToken ct) => _process.WaitForExitAsync(ct);

    /// <inheritdoc />
    public ValueTask DisposeAsync() => _process.DisposeAsync();
}
