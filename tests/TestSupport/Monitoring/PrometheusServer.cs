using System.Globalization;
using System.Net.Http.Json;
using System.Text.Json;

namespace PumpFleet.TestSupport.Monitoring;

/// <summary>
/// A private Prometheus (Debian package <c>prometheus</c>) on a free loopback port, started with a configuration the
/// test writes (scrape targets, rule files, Alertmanager), and a small client for its HTTP API.
/// </summary>
public sealed class PrometheusServer : IAsyncDisposable
{
    private const string Hint = "install the Debian package prometheus (scripts/install-promtool.sh, which scripts/test.sh runs), or set PROMETHEUS.";
    private readonly MonitoringProcess _process;

    private PrometheusServer(MonitoringProcess process)
    {
        _process = process;
        Http = new HttpClient { BaseAddress = process.BaseAddress, Timeout = TimeSpan.FromSeconds(10) };
    }

    /// <summary>A client for the server's HTTP API.</summary>
    public HttpClient Http { get; }

    /// <summary>The server's base address.</summary>
    public Uri BaseAddress => _process.BaseAddress;

    /// <summary>What the server printed (for failure messages).</summary>
    public string Output => _process.Output;

    /// <summary>
    /// Writes <paramref name="files"/> (name → content: the configuration as <c>prometheus.yml</c> and its rule files)
    /// into a new directory and starts Prometheus on it.
    /// </summary>
    public static async Task<PrometheusServer> StartAsync(IReadOnlyDictionary<string, string> files, CancellationToken ct)
    {
        var dir = MonitoringProcess.NewDirectory("prometheus");
        foreach (var (name, content) in files)
        {
            await File.WriteAllTextAsync(Path.Combine(dir, name), content, ct);
        }

        var exe = Environment.GetEnvironmentVariable("PROMETHEUS") is { Length: > 0 } p ? p : "prometheus";
        var process = await MonitoringProcess.StartAsync(exe, Hint, dir, (d, port) =>
        [
            $"--config.file={Path.Combine(d, "prometheus.yml")}",
            $"--storage.tsdb.path={Path.Combine(d, "data")}",
            $"--web.listen-address=127.0.0.1:{port}",
            // Alerts are re-sent to Alertmanager every minute by default; a test wants the resolution promptly.
            "--rules.alert.resend-delay=1s",
            "--log.level=warn",
        ], ct);
        return new PrometheusServer(process);
    }

    /// <summary>Runs an instant query; returns the result vector's elements (labels and value), or throws on an API error.</summary>
    public async Task<IReadOnlyList<PromSample>> QueryAsync(string promql, CancellationToken ct)
    {
        var body = await GetDataAsync($"api/v1/query?query={Uri.EscapeDataString(promql)}", promql, ct);
        var type = body.GetProperty("resultType").GetString();
        var result = body.GetProperty("result");
        return type switch
        {
            "vector" => [.. result.EnumerateArray().Select(e => new PromSample(
                e.GetProperty("metric").EnumerateObject().ToDictionary(p => p.Name, p => p.Value.GetString() ?? ""),
                ParseValue(e.GetProperty("value")[1].GetString())))],
            "scalar" => [new PromSample(new Dictionary<string, string>(), ParseValue(result[1].GetString()))],
            _ => throw new InvalidOperationException($"Unexpected result type {type} for {promql}"),
        };
    }

    /// <summary>The values of a label over the series that match <paramref name="match"/> (Grafana's <c>label_values</c>).</summary>
    public async Task<IReadOnlyList<string>> LabelValuesAsync(string label, string match, CancellationToken ct)
    {
        var data = await GetDataAsync($"api/v1/label/{Uri.EscapeDataString(label)}/values?match[]={Uri.EscapeDataString(match)}", match, ct);
        return [.. data.EnumerateArray().Select(v => v.GetString() ?? "")];
    }

    /// <summary>The metric families (names) Prometheus has stored.</summary>
    public Task<IReadOnlyList<string>> MetricNamesAsync(CancellationToken ct) => LabelValuesAsync("__name__", "{__name__=~\".+\"}", ct);

    /// <summary>The <c>/api/v1/alerts</c> list: (alert name, state, labels, annotations).</summary>
    public async Task<JsonElement> AlertsAsync(CancellationToken ct) => (await GetDataAsync("api/v1/alerts", "alerts", ct)).GetProperty("alerts");

    /// <summary>Scrape targets and their health (<c>/api/v1/targets</c>).</summary>
    public async Task<JsonElement> TargetsAsync(CancellationToken ct) => (await GetDataAsync("api/v1/targets", "targets", ct)).GetProperty("activeTargets");

    private async Task<JsonElement> GetDataAsync(string relative, string what, CancellationToken ct)
    {
        using var response = await Http.GetAsync(new Uri(relative, UriKind.Relative), ct);
        var json = await response.Content.ReadFromJsonAsync<JsonElement>(ct);
        if (!response.IsSuccessStatusCode || json.GetProperty("status").GetString() != "success")
        {
            throw new PrometheusQueryException($"Prometheus refused {what}: {(int)response.StatusCode} {json}");
        }

        return json.GetProperty("data").Clone();
    }

    private static double ParseValue(string? v) => v switch
    {
        "NaN" => double.NaN,
        "+Inf" => double.PositiveInfinity,
        "-Inf" => double.NegativeInfinity,
        _ => double.Parse(v!, CultureInfo.InvariantCulture),
    };

    /// <inheritdoc />
    public async ValueTask DisposeAsync()
    {
        Http.Dispose();
        await _process.DisposeAsync();
    }
}

/// <summary>One element of an instant-query result.</summary>
public sealed record PromSample(IReadOnlyDictionary<string, string> Labels, double Value);

/// <summary>Prometheus answered a query with an error (bad PromQL, for example).</summary>
public sealed class PrometheusQueryException(string message) : Exception(message);
