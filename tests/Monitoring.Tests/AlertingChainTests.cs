using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;
using System.Threading.Channels;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using MQTTnet;
using MQTTnet.Protocol;
using PumpFleet.Dashboard.Hosting;
using PumpFleet.EventStore;
using PumpFleet.Gateway.Hosting;
using PumpFleet.Grains;
using PumpFleet.Projections;
using PumpFleet.ReadModels;
using PumpFleet.ServiceDefaults;
using PumpFleet.TestSupport;
using PumpFleet.TestSupport.Monitoring;
using YamlDotNet.RepresentationModel;

namespace PumpFleet.Monitoring.Tests;

/// <summary>
/// The whole alerting chain with real parts: a hub publishes a motor stall over MQTT to the embedded broker of a
/// platform of its own (silo, gateway, dashboard in one process, as all-in-one runs it); Debian's Prometheus scrapes
/// its /metrics with the project's rules (deploy/prometheus) and sends to Debian's Alertmanager with the project's
/// routing (deploy/alertmanager), whose receivers point at a webhook this test hosts on loopback. The stall must
/// reach Alertmanager and the pager receiver as firing alerts with the labels and annotations of the rule file, and
/// resolve once the pump recovers. Meanwhile every Grafana panel's PromQL runs against the same Prometheus.
/// </summary>
/// <remarks>
/// Only timings differ from the deployed files, in the copies this test writes: 1 s scrape and evaluation intervals,
/// every rule's <c>for</c> shortened to 2 s (the real ones are 1–10 min), Alertmanager's group waits and intervals
/// shortened to 1 s, and PagerDuty (an Internet service) dropped from the pager receiver; its webhook stays. The
/// assertions compare the alerts' labels and annotations with the real rule file.
/// </remarks>
public sealed class AlertingChainTests(PostgresFixture pg) : IAsyncLifetime
{
    private const string FleetSecret = "alerting-chain-fleet-secret";
    private const string Namespace = "pumpfleet";
    private static readonly string s_repo = FindRepoRoot();

    private readonly string _serial = $"AC-{Guid.NewGuid():N}"[..14];
    private readonly string _hubId = $"ac-hub-{Guid.NewGuid():N}"[..14];
    private AlertWebhook _webhook = null!;
    private AlertmanagerServer _alertmanager = null!;
    private PrometheusServer _prometheus = null!;
    private WebApplication _host = null!;
    private int _mqttPort;
    private Uri _hostAddress = null!;

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    public async ValueTask InitializeAsync()
    {
        _webhook = new AlertWebhook();
        _alertmanager = await AlertmanagerServer.StartAsync(AlertmanagerConfigForTest(), Ct);

        var cs = await pg.CreateDatabaseAsync("alerting", typeof(ProjectionRunner).Assembly, typeof(GatewayServiceCollectionExtensions).Assembly);
        _mqttPort = Ports.Free();
        var builder = WebApplication.CreateBuilder(new WebApplicationOptions { EnvironmentName = "Development", ApplicationName = typeof(AlertingChainTests).Assembly.GetName().Name });
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        builder.Configuration.AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["ConnectionStrings:PumpFleet"] = cs,
            ["Dashboard:Auth:Mode"] = "Local",
            ["Projections:PollInterval"] = "00:00:00.100",
            ["Projections:KeepAliveInterval"] = "00:00:01",
            ["Projections:MetricsRefreshInterval"] = "00:00:00.500",
            ["Logging:LogLevel:Default"] = "Warning",
            ["Gateway:Mqtt:Port"] = _mqttPort.ToString(CultureInfo.InvariantCulture),
            ["Gateway:Mqtt:BindAddress"] = "127.0.0.1",
            // The dev-fleet shortcuts (Development only): the hub derives its password, its pump pairs on first batch.
            ["Gateway:Hubs:DevFleetSecret"] = FleetSecret,
            ["Gateway:Hubs:AutoPairOnFirstBatch"] = "true",
        });
        builder.AddServiceDefaults();
        builder.Services.AddPumpFleetEventStore(cs);
        builder.Services.AddPumpFleetGateway(builder.Configuration);
        builder.Services.AddPumpFleetGrains();
        builder.UseOrleans(silo =>
        {
            silo.UseLocalhostClustering(Ports.Free(), Ports.Free(), serviceId: "pumpfleet", clusterId: "pumpfleet-alerting");
            silo.AddPumpFleetProjections();
        });
        builder.AddPumpFleetDashboard();
        _host = builder.Build();
        _host.MapDefaultEndpoints();
        _host.MapPumpFleetDashboard();
        await _host.StartAsync(Ct);
        _hostAddress = new Uri(_host.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First());

        _prometheus = await PrometheusServer.StartAsync(new Dictionary<string, string>
        {
            ["prometheus.yml"] = PrometheusConfigForTest(_hostAddress.Authority, _alertmanager.Target),
            ["pumpfleet-rules.yaml"] = RulesForTest(),
        }, Ct);
    }

    public async ValueTask DisposeAsync()
    {
        if (_prometheus is not null)
        {
            await _prometheus.DisposeAsync();
        }

        if (_host is not null)
        {
            await _host.StopAsync();
            await _host.DisposeAsync();
        }

        if (_alertmanager is not null)
        {
            await _alertmanager.DisposeAsync();
        }

        if (_webhook is not null)
        {
            await _webhook.DisposeAsync();
        }
    }

    [Fact]
    public async Task MotorStallOverMqtt_FiresDocumentedAlertsInAlertmanager_ThenResolves_AndEveryDashboardPanelQueries()
    {
        // All three jobs of the rules and dashboards scrape this all-in-one process.
        await Eventually.TrueAsync(async () => (await _prometheus.QueryAsync("up{job=~\"pumpfleet-.*\"} == 1", Ct)).Count == 3,
            TimeSpan.FromSeconds(60), $"Prometheus scrapes the platform under its three jobs\n{_prometheus.Output}", TimeSpan.FromMilliseconds(200));

        await using var hub = await MqttHub.ConnectAsync(_hubId, SecretHashFor(_hubId), _mqttPort);
        var t0 = new DateTimeOffset(DateTime.UtcNow.Date, TimeSpan.Zero).AddHours(DateTime.UtcNow.Hour - 4);

        // A healthy pump: prescription, refill, one normal hour of delivery.
        await hub.PublishAsync(_serial, Batch(withDevice: true,
            $$"""{"seq":1,"type":"prescription.set","at":"{{Time(t0)}}","drug":"baclofen","concentration":{"value":2000,"unit":"mcg/mL"},"mode":"continuous","rateMlPerDay":0.5}""",
            $$"""{"seq":2,"type":"refill","at":"{{Time(t0)}}","expectedResidualMl":0,"aspiratedResidualMl":0,"addedMl":18,"drug":"baclofen","concentration":{"value":2000,"unit":"mcg/mL"} }""",
            Dose(3, t0, t0.AddHours(1), 0.0208)));
        await hub.WaitForAckAsync(_serial, 3);

        // Prometheus must have a sample of the histograms before the stall adds to them: rate() needs an increase
        // between two samples, and a series first appears with its first observations already counted.
        await Eventually.TrueAsync(async () =>
            (await _prometheus.QueryAsync("pumpfleet_eventstore_append_duration_seconds_count", Ct)).Count > 0
            && (await _prometheus.QueryAsync("pumpfleet_gateway_ingest_duration_seconds_count", Ct)).Count > 0,
            TimeSpan.FromSeconds(30), "the ingest histograms scraped", TimeSpan.FromMilliseconds(200));

        // One malformed batch: the reject and quarantine panels then have data too.
        var malformed = await hub.PublishRawAsync(_serial, """{"v":1,"events":[{"seq":1,"type":"dose.delivered"}]}""");
        Assert.Equal(MqttClientPublishReasonCode.PayloadFormatInvalid, malformed.ReasonCode);
        await hub.WaitForAsync("rejects", _ => true);

        // The motor stops: nothing delivered for an hour at 0.5 mL/day, the motor reports stalled, the pump alarms.
        await hub.PublishAsync(_serial, Batch(withDevice: false,
            Dose(4, t0.AddHours(1), t0.AddHours(2), 0),
            $$"""{"seq":5,"type":"status","at":"{{Time(t0.AddHours(2))}}","motor":"stalled","batteryPct":80}""",
            $$"""{"seq":6,"type":"alarm.raised","at":"{{Time(t0.AddHours(2))}}","code":"MOTOR_STALL","severity":"critical"}"""));
        await hub.WaitForAckAsync(_serial, 6);

        var rules = RealAlertRules();
        string[] expected = ["PumpFleetCriticalPumpAlarmActive", "PumpFleetFlowStallOpen"];

        // Alertmanager holds both as active alerts, with the rule file's labels and annotations.
        var active = new Dictionary<string, JsonElement>();
        await Eventually.TrueAsync(async () =>
        {
            active = ActiveAlerts(await _alertmanager.AlertsAsync(Ct), expected);
            return active.Count == expected.Length;
        }, TimeSpan.FromSeconds(90), $"both stall alerts active in Alertmanager\nPrometheus alerts: {await SafeAsync(() => _prometheus.AlertsAsync(Ct))}\n{_prometheus.Output}\n{_alertmanager.Output}",
            TimeSpan.FromMilliseconds(250));

        var alarm = active["PumpFleetCriticalPumpAlarmActive"];
        AssertLabelsAndAnnotations(alarm, rules["PumpFleetCriticalPumpAlarmActive"], new Dictionary<string, string> { ["code"] = "MOTOR_STALL" });
        Assert.Equal("1 pump(s) with active critical alarm MOTOR_STALL", alarm.GetProperty("annotations").GetProperty("summary").GetString());
        var stall = active["PumpFleetFlowStallOpen"];
        AssertLabelsAndAnnotations(stall, rules["PumpFleetFlowStallOpen"], new Dictionary<string, string>());
        Assert.Equal("1 open flow-stall anomaly(ies)", stall.GetProperty("annotations").GetProperty("summary").GetString());
        foreach (var a in active.Values)
        {
            Assert.Equal("active", a.GetProperty("status").GetProperty("state").GetString());
            // The project's routing: severity=critical goes to the pager receiver.
            Assert.Contains(a.GetProperty("receivers").EnumerateArray(), r => r.GetProperty("name").GetString() == "pager");
            // The runbook the annotation links exists in the repository.
            var runbook = a.GetProperty("annotations").GetProperty("runbook_url").GetString()!;
            Assert.True(File.Exists(Path.Combine(s_repo, "docs", "runbooks", runbook[(runbook.LastIndexOf('/') + 1)..])), runbook);
        }

        // The pager's webhook was notified of both, firing.
        await Eventually.TrueAsync(() => Task.FromResult(expected.All(name => Notified("pager", "firing", name))),
            TimeSpan.FromSeconds(30), $"firing notifications on the pager webhook; got {Describe(_webhook.Notifications)}", TimeSpan.FromMilliseconds(200));

        // With the stall open, every Grafana panel's PromQL runs against the same Prometheus.
        await CheckGrafanaPanelsAsync();

        // The pump recovers: normal delivery, motor running, the alarm cleared.
        await hub.PublishAsync(_serial, Batch(withDevice: false,
            Dose(7, t0.AddHours(2), t0.AddHours(3), 0.0208),
            $$"""{"seq":8,"type":"status","at":"{{Time(t0.AddHours(3))}}","motor":"running","batteryPct":80}""",
            $$"""{"seq":9,"type":"alarm.cleared","at":"{{Time(t0.AddHours(3))}}","code":"MOTOR_STALL"}"""));
        await hub.WaitForAckAsync(_serial, 9);

        await Eventually.TrueAsync(async () => ActiveAlerts(await _alertmanager.AlertsAsync(Ct), expected).Count == 0,
            TimeSpan.FromSeconds(90), $"both stall alerts resolved in Alertmanager\n{_alertmanager.Output}", TimeSpan.FromMilliseconds(250));
        await Eventually.TrueAsync(() => Task.FromResult(expected.All(name => Notified("pager", "resolved", name))),
            TimeSpan.FromSeconds(30), $"resolved notifications on the pager webhook; got {Describe(_webhook.Notifications)}", TimeSpan.FromMilliseconds(200));

        // After all that traffic (MQTT, grain calls, PostgreSQL, HTTP), the whole scrape of every meter passes the lint.
        using var http = new HttpClient { BaseAddress = _hostAddress };
        var scrape = await http.GetStringAsync(new Uri("/metrics", UriKind.Relative), Ct);
        Assert.Contains("\norleans_", scrape, StringComparison.Ordinal);
        Assert.Contains("\ndb_client_", scrape, StringComparison.Ordinal);
        Assert.Contains("\ndotnet_", scrape, StringComparison.Ordinal);
        Assert.Contains("\nhttp_server_", scrape, StringComparison.Ordinal);
        var (code, output) = await Promtool.CheckMetricsAsync(scrape, Ct);
        Assert.True(code == 0, $"promtool check metrics exited {code} on the whole scrape:\n{output}");
    }

    /// <summary>
    /// Every Prometheus panel of deploy/grafana/dashboards, with the template variables resolved as Grafana would (the
    /// namespace variable through its own label_values query, "All" = its allValue), must be accepted by Prometheus and
    /// return a sample, except the panels listed with the reason why their metric has no sample in this scenario. Those
    /// must still be valid PromQL, and every metric a panel names must be one Prometheus has stored or one documented in
    /// docs/metrics.md (or cAdvisor's, which only Kubernetes provides).
    /// </summary>
    private async Task CheckGrafanaPanelsAsync()
    {
        var expectedEmpty = new Dictionary<string, string>
        {
            // cAdvisor (the kubelet) exports container_* series; a process outside Kubernetes has none.
            ["pumpfleet-platform.json/CPU by container (cores)"] = "cAdvisor metric, Kubernetes only",
            // Counters of failures: a counter without a single failure has no series.
            ["pumpfleet-platform.json/Event store errors by operation"] = "no event store error in the scenario",
            ["pumpfleet-ingest.json/Dependency failures by dependency"] = "no dependency failure in the scenario",
            // The silent-pumps panel overlays the value of 30 minutes ago, older than this Prometheus.
            ["pumpfleet-alerts.json/Silent pumps#offset"] = "offset 30m reaches before this Prometheus started",
        };
        // The panels this scenario is about show it: one pump with a critical alarm, one open flow stall. (Their stat
        // expressions end in "or vector(0)", so that a healthy fleet shows 0 and not "No data"; the value tells.)
        var expectedValues = new Dictionary<string, double>
        {
            ["pumpfleet-alerts.json/Critical pump alarms"] = 1,
            ["pumpfleet-alerts.json/Open flow stalls"] = 1,
            ["pumpfleet-alerts.json/Open over-infusions"] = 0,
        };
        var stored = (await _prometheus.MetricNamesAsync(Ct)).ToHashSet(StringComparer.Ordinal);
        var documented = File.ReadAllText(Path.Combine(s_repo, "docs", "metrics.md"));
        var failures = new List<string>();
        var emptyFound = new List<string>();
        var checkedPanels = 0;
        foreach (var file in Directory.GetFiles(Path.Combine(s_repo, "deploy", "grafana", "dashboards"), "*.json").Order())
        {
            using var doc = JsonDocument.Parse(await File.ReadAllTextAsync(file, Ct));
            var variables = await ResolveVariablesAsync(doc.RootElement);
            foreach (var (title, expr) in PrometheusTargets(doc.RootElement.GetProperty("panels")))
            {
                var key = $"{Path.GetFileName(file)}/{title}" + (expr.Contains(" offset ", StringComparison.Ordinal) ? "#offset" : "");
                var query = Interpolate(expr, variables);
                checkedPanels++;
                IReadOnlyList<PromSample> result;
                try
                {
                    result = await _prometheus.QueryAsync(query, Ct);
                }
                catch (PrometheusQueryException e)
                {
                    failures.Add($"{key}: not accepted: {e.Message}");
                    continue;
                }

                foreach (var metric in MetricNames(expr).Where(m => !stored.Contains(m) && !documented.Contains(m, StringComparison.Ordinal)
                    && !m.StartsWith("container_", StringComparison.Ordinal)))
                {
                    failures.Add($"{key}: references {metric}, which neither Prometheus has stored nor docs/metrics.md documents");
                }

                if (expectedValues.TryGetValue(key, out var want) && (result.Count != 1 || result[0].Value != want))
                {
                    failures.Add($"{key}: expected {want}, got [{string.Join(", ", result.Select(r => r.Value))}]");
                }

                if (!result.Any(s => !double.IsNaN(s.Value)))
                {
                    emptyFound.Add(key);
                    if (!expectedEmpty.ContainsKey(key))
                    {
                        failures.Add($"{key}: no data ({query} → {result.Count} samples, all NaN or none)");
                    }
                }
            }
        }

        // The list of panels allowed to be empty stays honest: a panel that now has data must come off it.
        foreach (var key in expectedEmpty.Keys.Where(k => !emptyFound.Contains(k)))
        {
            failures.Add($"{key}: listed as having no data ({expectedEmpty[key]}) but it returned data: remove it from the list");
        }

        Assert.True(checkedPanels >= 40, $"only {checkedPanels} Prometheus panel queries found");
        Assert.True(failures.Count == 0, string.Join('\n', failures));
    }

    private async Task<Dictionary<string, string>> ResolveVariablesAsync(JsonElement dashboard)
    {
        var values = new Dictionary<string, string>(StringComparer.Ordinal)
        {
            // Grafana's own interval variables, as it would set them for a dashboard over the last hour.
            ["__rate_interval"] = "5m",
            ["__interval"] = "1m",
            ["__range"] = "1h",
        };
        foreach (var v in dashboard.GetProperty("templating").GetProperty("list").EnumerateArray())
        {
            if (v.GetProperty("type").GetString() != "query" || v.GetProperty("datasource").GetProperty("type").GetString() != "prometheus")
            {
                continue;
            }

            var name = v.GetProperty("name").GetString()!;
            var definition = v.GetProperty("query").ValueKind == JsonValueKind.Object
                ? v.GetProperty("query").GetProperty("query").GetString()!
                : v.GetProperty("query").GetString()!;
            var m = Regex.Match(definition, @"^label_values\((?<match>.+),\s*(?<label>[a-zA-Z_][a-zA-Z0-9_]*)\)$");
            Assert.True(m.Success, $"variable {name}: unsupported query {definition}");
            var options = await _prometheus.LabelValuesAsync(m.Groups["label"].Value, m.Groups["match"].Value, Ct);
            values[name] = v.TryGetProperty("includeAll", out var all) && all.GetBoolean()
                ? (v.TryGetProperty("allValue", out var av) && av.GetString() is { } allValue ? allValue : string.Join('|', options.Select(Regex.Escape)))
                : options.FirstOrDefault() ?? "";
        }

        return values;
    }

    private static string Interpolate(string expr, Dictionary<string, string> variables) =>
        Regex.Replace(expr, @"\$\{?(?<name>[a-zA-Z_][a-zA-Z0-9_]*)\}?", m =>
            variables.TryGetValue(m.Groups["name"].Value, out var value) ? value : throw new InvalidOperationException($"unknown variable {m.Value} in {expr}"));

    private static IEnumerable<(string Title, string Expr)> PrometheusTargets(JsonElement panels)
    {
        foreach (var panel in panels.EnumerateArray())
        {
            if (panel.TryGetProperty("panels", out var nested))
            {
                foreach (var t in PrometheusTargets(nested))
                {
                    yield return t;
                }
            }

            if (!panel.TryGetProperty("targets", out var targets))
            {
                continue;
            }

            foreach (var target in targets.EnumerateArray())
            {
                // SQL panels (cohorts, on the PostgreSQL data source) have rawSql instead of expr.
                if (target.TryGetProperty("expr", out var expr) && expr.GetString() is { Length: > 0 } e)
                {
                    yield return (panel.GetProperty("title").GetString()!, e);
                }
            }
        }
    }

    private static IEnumerable<string> MetricNames(string expr)
    {
        // A metric name is an identifier followed by a selector or range; aggregation and function names are followed by '('.
        foreach (Match m in Regex.Matches(expr, @"(?<![a-zA-Z0-9_:""])(?<name>[a-zA-Z_:][a-zA-Z0-9_:]*)\s*(?=\{|\[)"))
        {
            yield return m.Groups["name"].Value;
        }
    }

    private static void AssertLabelsAndAnnotations(JsonElement alert, YamlMappingNode rule, Dictionary<string, string> byLabels)
    {
        var labels = alert.GetProperty("labels");
        Assert.Equal(((YamlScalarNode)rule["alert"]).Value, labels.GetProperty("alertname").GetString());
        foreach (var (key, value) in ((YamlMappingNode)rule["labels"]).Children.Select(c => (((YamlScalarNode)c.Key).Value!, ((YamlScalarNode)c.Value).Value!)))
        {
            Assert.Equal(value, labels.GetProperty(key).GetString());
        }

        foreach (var (key, value) in byLabels)
        {
            Assert.Equal(value, labels.GetProperty(key).GetString());
        }

        // The deployed configuration's external label reaches Alertmanager too.
        Assert.Equal("production", labels.GetProperty("environment").GetString());
        var annotations = alert.GetProperty("annotations");
        var expectedAnnotations = ((YamlMappingNode)rule["annotations"]).Children.ToDictionary(c => ((YamlScalarNode)c.Key).Value!, c => ((YamlScalarNode)c.Value).Value!);
        Assert.Equal(expectedAnnotations.Keys.Order(), annotations.EnumerateObject().Select(p => p.Name).Order());
        Assert.Equal(expectedAnnotations["runbook_url"], annotations.GetProperty("runbook_url").GetString());
        // Templated annotations are rendered: no template syntax is left in what reaches Alertmanager.
        Assert.All(annotations.EnumerateObject(), p => Assert.DoesNotContain("{{", p.Value.GetString(), StringComparison.Ordinal));
    }

    private static Dictionary<string, JsonElement> ActiveAlerts(JsonElement alerts, string[] names) =>
        alerts.EnumerateArray()
            .Where(a => a.GetProperty("status").GetProperty("state").GetString() == "active"
                && names.Contains(a.GetProperty("labels").GetProperty("alertname").GetString()))
            .GroupBy(a => a.GetProperty("labels").GetProperty("alertname").GetString()!)
            .ToDictionary(g => g.Key, g => g.Single());

    private bool Notified(string receiver, string status, string alertName) =>
        _webhook.Notifications.Any(n => n.Path == receiver && n.Body.GetProperty("receiver").GetString() == receiver
            && n.Body.GetProperty("alerts").EnumerateArray().Any(a => a.GetProperty("status").GetString() == status
                && a.GetProperty("labels").GetProperty("alertname").GetString() == alertName));

    private static string Describe(IReadOnlyList<(string Path, JsonElement Body)> notifications) =>
        string.Join(" | ", notifications.Select(n => $"{n.Path}: {n.Body.GetProperty("status").GetString()} "
            + string.Join(",", n.Body.GetProperty("alerts").EnumerateArray().Select(a => a.GetProperty("labels").GetProperty("alertname").GetString() + "=" + a.GetProperty("status").GetString()))));

    private static async Task<string> SafeAsync(Func<Task<JsonElement>> f)
    {
        try
        {
            return (await f()).ToString();
        }
        catch (Exception e) when (e is HttpRequestException or PrometheusQueryException or TaskCanceledException)
        {
            return e.Message;
        }
    }

    /// <summary>The alerting rules of deploy/prometheus/pumpfleet-rules.yaml by name (a name used twice keeps its critical variant).</summary>
    private static Dictionary<string, YamlMappingNode> RealAlertRules()
    {
        var result = new Dictionary<string, YamlMappingNode>(StringComparer.Ordinal);
        foreach (var rule in Rules(LoadYaml(Path.Combine(s_repo, "deploy", "prometheus", "pumpfleet-rules.yaml"))))
        {
            if (rule.Children.TryGetValue(new YamlScalarNode("alert"), out var name))
            {
                result.TryAdd(((YamlScalarNode)name).Value!, rule);
            }
        }

        return result;
    }

    private static IEnumerable<YamlMappingNode> Rules(YamlMappingNode root) =>
        ((YamlSequenceNode)root["groups"]).Children.Cast<YamlMappingNode>().SelectMany(g => ((YamlSequenceNode)g["rules"]).Children.Cast<YamlMappingNode>());

    /// <summary>The real rule file with every <c>for</c> at 2 s and group intervals at 1 s; nothing else changes.</summary>
    private static string RulesForTest()
    {
        var root = LoadYaml(Path.Combine(s_repo, "deploy", "prometheus", "pumpfleet-rules.yaml"));
        foreach (var group in ((YamlSequenceNode)root["groups"]).Children.Cast<YamlMappingNode>())
        {
            if (group.Children.ContainsKey(new YamlScalarNode("interval")))
            {
                group.Children[new YamlScalarNode("interval")] = new YamlScalarNode("1s");
            }
        }

        foreach (var rule in Rules(root).Where(r => r.Children.ContainsKey(new YamlScalarNode("for"))))
        {
            rule.Children[new YamlScalarNode("for")] = new YamlScalarNode("2s");
        }

        return Save(root);
    }

    /// <summary>deploy/prometheus/prometheus.yml with 1 s intervals, every job's targets set to this process, and the test's Alertmanager.</summary>
    private static string PrometheusConfigForTest(string target, string alertmanager)
    {
        var root = LoadYaml(Path.Combine(s_repo, "deploy", "prometheus", "prometheus.yml"));
        var global = (YamlMappingNode)root["global"];
        global.Children[new YamlScalarNode("scrape_interval")] = new YamlScalarNode("1s");
        global.Children[new YamlScalarNode("scrape_timeout")] = new YamlScalarNode("1s");
        global.Children[new YamlScalarNode("evaluation_interval")] = new YamlScalarNode("1s");
        ((YamlMappingNode)root["alerting"]).Children[new YamlScalarNode("alertmanagers")] = new YamlSequenceNode(
            new YamlMappingNode(new YamlScalarNode("static_configs"), new YamlSequenceNode(Targets(alertmanager))));
        foreach (var job in ((YamlSequenceNode)root["scrape_configs"]).Children.Cast<YamlMappingNode>())
        {
            // The all-in-one process plays every role, so it is the one target of each job.
            job.Children[new YamlScalarNode("static_configs")] = new YamlSequenceNode(Targets(target));
        }

        Assert.Equal(["pumpfleet-dashboard", "pumpfleet-gateway", "pumpfleet-silo"],
            ((YamlSequenceNode)root["scrape_configs"]).Children.Select(j => ((YamlScalarNode)j["job_name"]).Value).Order());
        return Save(root);
    }

    private static YamlMappingNode Targets(string target) =>
        new(new YamlScalarNode("targets"), new YamlSequenceNode(new YamlScalarNode(target)));

    /// <summary>
    /// deploy/alertmanager/alertmanager.yml with the routes and inhibitions as they are, waits and intervals at 1 s, and
    /// every receiver reduced to a webhook on this test's listener (PagerDuty is an Internet service).
    /// </summary>
    private string AlertmanagerConfigForTest()
    {
        var root = LoadYaml(Path.Combine(s_repo, "deploy", "alertmanager", "alertmanager.yml"));
        ShortenTimings((YamlMappingNode)root["route"]);
        var receivers = (YamlSequenceNode)root["receivers"];
        foreach (var receiver in receivers.Children.Cast<YamlMappingNode>())
        {
            var name = ((YamlScalarNode)receiver["name"]).Value!;
            Assert.True(receiver.Children.ContainsKey(new YamlScalarNode("webhook_configs")), $"receiver {name} has no webhook to redirect");
            foreach (var key in receiver.Children.Keys.Cast<YamlScalarNode>().Select(k => k.Value!).Where(k => k is not ("name" or "webhook_configs")).ToList())
            {
                receiver.Children.Remove(new YamlScalarNode(key));
            }

            foreach (var hook in ((YamlSequenceNode)receiver["webhook_configs"]).Children.Cast<YamlMappingNode>())
            {
                hook.Children[new YamlScalarNode("url")] = new YamlScalarNode(_webhook.UrlFor(name).ToString());
            }
        }

        return Save(root);

        static void ShortenTimings(YamlMappingNode route)
        {
            foreach (var key in new[] { "group_wait", "group_interval" })
            {
                if (route.Children.ContainsKey(new YamlScalarNode(key)) || key == "group_interval")
                {
                    route.Children[new YamlScalarNode(key)] = new YamlScalarNode("1s");
                }
            }

            if (route.Children.TryGetValue(new YamlScalarNode("routes"), out var routes))
            {
                foreach (var child in ((YamlSequenceNode)routes).Children.Cast<YamlMappingNode>())
                {
                    ShortenTimings(child);
                }
            }
        }
    }

    private static YamlMappingNode LoadYaml(string path)
    {
        var stream = new YamlStream();
        using var reader = new StringReader(File.ReadAllText(path));
        stream.Load(reader);
        return (YamlMappingNode)stream.Documents[0].RootNode;
    }

    private static string Save(YamlMappingNode root)
    {
        using var writer = new StringWriter(CultureInfo.InvariantCulture);
        new YamlStream(new YamlDocument(root)).Save(writer, assignAnchors: false);
        return writer.ToString();
    }

    private static string SecretHashFor(string hubId) =>
        Convert.ToHexStringLower(System.Security.Cryptography.HMACSHA256.HashData(Encoding.UTF8.GetBytes(FleetSecret), Encoding.UTF8.GetBytes(hubId)));

    private static string Time(DateTimeOffset t) => t.ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", CultureInfo.InvariantCulture);

    private static string Dose(long seq, DateTimeOffset from, DateTimeOffset at, double volume) => string.Create(CultureInfo.InvariantCulture,
        $$"""{"seq":{{seq}},"type":"dose.delivered","at":"{{Time(at)}}","from":"{{Time(from)}}","volumeMl":{{volume}},"kind":"basal"}""");

    private static string Batch(bool withDevice, params string[] events) =>
        $$"""{"v":1,{{(withDevice ? "\"device\":{\"model\":\"SM2-20\",\"firmware\":\"4.2.1\",\"lot\":\"AC\",\"reservoirCapacityMl\":20}," : "")}}"events":[{{string.Join(",", events)}}]}""";


    private static string FindRepoRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "PumpFleet.sln")))
            {
                return dir.FullName;
            }
        }

        throw new InvalidOperationException("PumpFleet.sln not found above the test binaries.");
    }

    /// <summary>A bedside hub as protocol v1 describes it: MQTT 5, QoS 1, subscribed to its own acks and rejects.</summary>
    private sealed class MqttHub : IAsyncDisposable
    {
        private readonly IMqttClient _client;
        private readonly string _hubId;
        private readonly Channel<(string Topic, string Payload)> _inbox = Channel.CreateUnbounded<(string, string)>();
        private readonly List<(string Topic, string Payload)> _seen = [];

        private MqttHub(IMqttClient client, string hubId)
        {
            _client = client;
            _hubId = hubId;
        }

        public static async Task<MqttHub> ConnectAsync(string hubId, string password, int port)
        {
            var client = new MqttClientFactory().CreateMqttClient();
            var hub = new MqttHub(client, hubId);
            client.ApplicationMessageReceivedAsync += e =>
            {
                hub._inbox.Writer.TryWrite((e.ApplicationMessage.Topic, e.ApplicationMessage.ConvertPayloadToString()));
                return Task.CompletedTask;
            };
            var connect = await client.ConnectAsync(new MqttClientOptionsBuilder()
                .WithTcpServer("127.0.0.1", port).WithClientId(hubId).WithCredentials(hubId, password)
                .WithProtocolVersion(MQTTnet.Formatter.MqttProtocolVersion.V500).WithTimeout(TimeSpan.FromSeconds(20)).Build(), Ct);
            Assert.Equal(MqttClientConnectResultCode.Success, connect.ResultCode);
            await client.SubscribeAsync(new MqttClientSubscribeOptionsBuilder()
                .WithTopicFilter(f => f.WithTopic($"pumpfleet/v1/hubs/{hubId}/pumps/+/ack").WithQualityOfServiceLevel(MqttQualityOfServiceLevel.AtLeastOnce))
                .WithTopicFilter(f => f.WithTopic($"pumpfleet/v1/hubs/{hubId}/pumps/+/rejects").WithQualityOfServiceLevel(MqttQualityOfServiceLevel.AtLeastOnce))
                .Build(), Ct);
            return hub;
        }

        public async Task PublishAsync(string serial, string payload)
        {
            var r = await PublishRawAsync(serial, payload);
            Assert.True(r.IsSuccess, $"PUBACK {r.ReasonCode} {r.ReasonString}");
        }

        public Task<MqttClientPublishResult> PublishRawAsync(string serial, string payload) =>
            _client.PublishAsync(new MqttApplicationMessageBuilder().WithTopic($"pumpfleet/v1/hubs/{_hubId}/pumps/{serial}/events")
                .WithPayload(payload).WithQualityOfServiceLevel(MqttQualityOfServiceLevel.AtLeastOnce).Build(), Ct);

        public Task WaitForAckAsync(string serial, long seq) =>
            WaitForAsync("ack", p => JsonDocument.Parse(p).RootElement.GetProperty("committedSeq").GetInt64() >= seq, serial);

        public async Task WaitForAsync(string kind, Func<string, bool> match, string? serial = null)
        {
            bool Hit((string Topic, string Payload) m) => m.Topic.EndsWith("/" + kind, StringComparison.Ordinal)
                && (serial is null || m.Topic.Contains($"/pumps/{serial}/", StringComparison.Ordinal)) && match(m.Payload);
            if (_seen.Any(Hit))
            {
                return;
            }

            using var cts = CancellationTokenSource.CreateLinkedTokenSource(Ct);
            cts.CancelAfter(TimeSpan.FromSeconds(30));
            while (true)
            {
                var m = await _inbox.Reader.ReadAsync(cts.Token);
                _seen.Add(m);
                if (Hit(m))
                {
                    return;
                }
            }
        }

        public async ValueTask DisposeAsync()
        {
            if (_client.IsConnected)
            {
                await _client.DisconnectAsync(new MqttClientDisconnectOptionsBuilder().Build(), CancellationToken.None);
            }

            _client.Dispose();
        }
    }
}
