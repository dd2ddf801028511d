using System.Net.Http.Json;
using System.Text.Json;

namespace PumpFleet.TestSupport.Monitoring;

/// <summary>A private Alertmanager (Debian package <c>prometheus-alertmanager</c>) on a free loopback port, without clustering.</summary>
public sealed class AlertmanagerServer : IAsyncDisposable
{
    private const string Hint = "install the Debian package prometheus-alertmanager (scripts/install-promtool.sh, which scripts/test.sh runs), or set ALERTMANAGER.";
    private readonly MonitoringProcess _process;

    private AlertmanagerServer(MonitoringProcess process)
    {
        _process = process;
        Http = new HttpClient { BaseAddress = process.BaseAddress, Timeout = TimeSpan.FromSeconds(10) };
    }

    /// <summary>A client for the server's HTTP API.</summary>
    public HttpClient Http { get; }

    /// <summary>The server's <c>host:port</c>, as a Prometheus <c>alertmanagers</c> target.</summary>
    public string Target => $"127.0.0.1:{_process.Port}";

    /// <summary>What the server printed (for failure messages).</summary>
    public string Output => _process.Output;

    /// <summary>Starts Alertmanager with <paramref name="configYaml"/> as its configuration.</summary>
    public static async Task<AlertmanagerServer> StartAsync(string configYaml, CancellationToken ct)
    {
        var dir = MonitoringProcess.NewDirectory("alertmanager");
        await File.WriteAllTextAsync(Path.Combine(dir, "alertmanager.yml"), configYaml, ct);
        var exe = Environment.GetEnvironmentVariable("ALERTMANAGER") is { Length: > 0 } p ? p : "prometheus-alertmanager";
        var process = await MonitoringProcess.StartAsync(exe, Hint, dir, (d, port) =>
        [
            $"--config.file={Path.Combine(d, "alertmanager.yml")}",
            $"--storage.path={Path.Combine(d, "data")}",
            $"--web.listen-address=127.0.0.1:{port}",
            // An empty cluster address turns the gossip mesh off: no second listener, nothing beyond loopback.
            "--cluster.listen-address=",
            "--log.level=warn",
        ], ct);
        return new AlertmanagerServer(process);
    }

    /// <summary>The alerts Alertmanager holds (<c>GET /api/v2/alerts</c>; resolved alerts are not listed).</summary>
    public async Task<JsonElement> AlertsAsync(CancellationToken ct) =>
        await Http.GetFromJsonAsync<JsonElement>(new Uri("api/v2/alerts", UriKind.Relative), ct);

    /// <inheritdoc />
    public async ValueTask DisposeAsync()
    {
        Http.Dispose();
        await _process.DisposeAsync();
    }
}
