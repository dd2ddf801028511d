namespace PumpFleet.Deploy.Tests;

/// <summary>
/// The chart against the runtime contract: ports, health probes, environment, Orleans hosting settings,
/// disruption budgets, autoscaling, monitoring objects and the migration hook.
/// </summary>
public sealed class HelmChartTests
{
    private static readonly string[] s_components = ["silo", "gateway", "dashboard"];

    private static readonly Dictionary<string, int> s_httpPorts = new()
    {
        ["silo"] = 8082,
        ["gateway"] = 8081,
        ["dashboard"] = 8080,
    };

    [Theory]
    [MemberData(nameof(ValuesFiles))]
    public void LintStrict_WithValuesFile_Passes(string valuesFile)
    {
        string[] arguments = ["lint", "--strict", Repo.ChartDir, .. RenderedChart.ValuesArguments(valuesFile)];
        var result = RenderedChart.Helm(arguments);
        Assert.True(result.ExitCode == 0, result.Describe($"helm lint --strict ({RenderedChart.Describe(valuesFile)})"));
    }

    [Theory]
    [MemberData(nameof(ValuesFiles))]
    public void Workloads_WithValuesFile_ServeHttpOnContractPortWithHealthProbes(string valuesFile)
    {
        var chart = RenderedChart.For(valuesFile);
        foreach (var component in s_components)
        {
            var container = chart.Container(component);
            var http = container.Seq("ports").Single(p => p.Str("name") == "http");
            Assert.Equal(s_httpPorts[component].ToString(System.Globalization.CultureInfo.InvariantCulture), http.At("containerPort")?.ToString());
            Assert.Equal("/health/ready", container.Str("readinessProbe", "httpGet", "path"));
            Assert.Equal("/health/live", container.Str("livenessProbe", "httpGet", "path"));
            Assert.Equal("http", container.Str("readinessProbe", "httpGet", "port"));
            Assert.Equal("http", container.Str("livenessProbe", "httpGet", "port"));
            Assert.NotNull(container.At("resources", "requests", "memory"));

            var service = chart.Get("Service", component);
            Assert.Contains(
                service.Seq("spec", "ports"),
                p => p.Str("name") == "http" && p.At("port")?.ToString() == s_httpPorts[component].ToString(System.Globalization.CultureInfo.InvariantCulture));
        }
    }

    // The host project whose assembly each workload starts (src/<folder>/Program.cs builds PumpFleet.<folder>.dll).
    private static readonly Dictionary<string, string> s_hostProjects = new()
    {
        ["silo"] = "Silo",
        ["gateway"] = "Gateway.Host",
        ["dashboard"] = "Dashboard.Host",
    };

    [Theory]
    [MemberData(nameof(ValuesFiles))]
    public void Workloads_WithValuesFile_StartTheirHostProjectsAssembly(string valuesFile)
    {
        // A renamed or moved host would otherwise leave the chart starting a dll that no longer exists in the image.
        var chart = RenderedChart.For(valuesFile);
        foreach (var component in s_components)
        {
            var host = s_hostProjects[component];
            Assert.Equal(["dotnet", $"/app/PumpFleet.{host}.dll"], chart.Container(component).Seq("command").Cast<string>().ToArray());
            Assert.True(File.Exists(Path.Combine(Repo.Root, "src", host, "Program.cs")), $"src/{host} is not a host project (no Program.cs)");
            Assert.True(File.Exists(Path.Combine(Repo.Root, "src", host, $"{host}.csproj")), $"src/{host}/{host}.csproj is missing");
        }
    }

    [Theory]
    [MemberData(nameof(ValuesFiles))]
    public void Workloads_WithValuesFile_GetConnectionStringFromSecretAndClusterIdentity(string valuesFile)
    {
        var chart = RenderedChart.For(valuesFile);
        var config = chart.ConfigMapData();
        Assert.Equal("AdoNet", config.Str("PumpFleet__Clustering"));
        Assert.False(string.IsNullOrEmpty(config.Str("Orleans__ClusterId")));
        Assert.False(string.IsNullOrEmpty(config.Str("Orleans__ServiceId")));
        Assert.Equal("false", config.Str("Simulator__Enabled"));
        var configMapName = chart.OfKind("ConfigMap").Single().Str("metadata", "name");

        foreach (var component in s_components)
        {
            var container = chart.Container(component);
            var env = Env(container);
            var connection = env["ConnectionStrings__PumpFleet"];
            Assert.Null(connection.At("value"));
            Assert.False(string.IsNullOrEmpty(connection.Str("valueFrom", "secretKeyRef", "name")), component);
            Assert.False(string.IsNullOrEmpty(connection.Str("valueFrom", "secretKeyRef", "key")), component);

            Assert.Equal("metadata.name", env["POD_NAME"].Str("valueFrom", "fieldRef", "fieldPath"));
            Assert.Equal("metadata.namespace", env["POD_NAMESPACE"].Str("valueFrom", "fieldRef", "fieldPath"));
            Assert.Equal("status.podIP", env["POD_IP"].Str("valueFrom", "fieldRef", "fieldPath"));
            Assert.True(int.Parse(env["DOTNET_SHUTDOWNTIMEOUTSECONDS"].Str("value")!, System.Globalization.CultureInfo.InvariantCulture) > 0);

            // The cluster identity and the other settings come from the shared ConfigMap.
            Assert.Contains(container.Seq("envFrom"), e => e.Str("configMapRef", "name") == configMapName);
        }
    }

    [Theory]
    [MemberData(nameof(ValuesFiles))]
    public void Silo_WithValuesFile_FollowsOrleansKubernetesHosting(string valuesFile)
    {
        var chart = RenderedChart.For(valuesFile);
        var config = chart.ConfigMapData();
        var deployment = chart.Get("Deployment", "silo");
        var podLabels = deployment.Map("spec", "template", "metadata", "labels");
        Assert.Equal(config.Str("Orleans__ServiceId"), podLabels.Str("orleans/serviceId"));
        Assert.Equal(config.Str("Orleans__ClusterId"), podLabels.Str("orleans/clusterId"));

        var container = chart.Container("silo");
        var env = Env(container);
        Assert.Equal("true", env["PumpFleet__KubernetesHosting"].Str("value"));
        Assert.Equal("metadata.labels['orleans/serviceId']", env["ORLEANS_SERVICE_ID"].Str("valueFrom", "fieldRef", "fieldPath"));
        Assert.Equal("metadata.labels['orleans/clusterId']", env["ORLEANS_CLUSTER_ID"].Str("valueFrom", "fieldRef", "fieldPath"));
        Assert.Contains(container.Seq("ports"), p => p.At("containerPort")?.ToString() == "11111");
        Assert.Contains(container.Seq("ports"), p => p.At("containerPort")?.ToString() == "30000");

        // The host must finish shutting down (grain handover, leaving membership) before the kubelet kills it.
        var shutdown = int.Parse(env["DOTNET_SHUTDOWNTIMEOUTSECONDS"].Str("value")!, System.Globalization.CultureInfo.InvariantCulture);
        var grace = int.Parse(deployment.At("spec", "template", "spec", "terminationGracePeriodSeconds")!.ToString()!, System.Globalization.CultureInfo.InvariantCulture);
        Assert.True(grace > shutdown, $"terminationGracePeriodSeconds {grace} must exceed DOTNET_SHUTDOWNTIMEOUTSECONDS {shutdown}.");
        Assert.Equal("0", deployment.At("spec", "strategy", "rollingUpdate", "maxUnavailable")?.ToString());

        var serviceAccount = deployment.Str("spec", "template", "spec", "serviceAccountName");
        Assert.Contains(chart.OfKind("ServiceAccount"), sa => sa.Str("metadata", "name") == serviceAccount);
        var role = chart.OfKind("Role").Single();
        var podRule = role.Seq("rules").Single(r => r.Seq("resources").Contains("pods"));
        Assert.Equal(["delete", "get", "list", "watch"], podRule.Seq("verbs").Cast<string>().Order().ToArray());
        var binding = chart.OfKind("RoleBinding").Single();
        Assert.Equal(role.Str("metadata", "name"), binding.Str("roleRef", "name"));
        Assert.Contains(binding.Seq("subjects"), s => s.Str("name") == serviceAccount && s.Str("namespace") == RenderedChart.Namespace);
    }

    [Theory]
    [MemberData(nameof(ValuesFiles))]
    public void PodDisruptionBudgets_WithValuesFile_CoverEveryComponent(string valuesFile)
    {
        var chart = RenderedChart.For(valuesFile);
        foreach (var component in s_components)
        {
            var pdb = chart.Get("PodDisruptionBudget", component);
            Assert.NotNull(pdb.At("spec", "maxUnavailable"));
            var podLabels = chart.Workload(component).Map("spec", "template", "metadata", "labels");
            foreach (var (key, value) in pdb.Map("spec", "selector", "matchLabels"))
            {
                Assert.Equal(value, podLabels.At((string)key));
            }
        }
    }

    [Theory]
    [MemberData(nameof(ValuesFiles))]
    public void MigrationJob_WithValuesFile_RunsAsPreInstallAndPreUpgradeHook(string valuesFile)
    {
        var chart = RenderedChart.For(valuesFile);
        var job = chart.Get("Job", "migrations");
        var annotations = job.Map("metadata", "annotations");
        Assert.Equal("pre-install,pre-upgrade", annotations.Str("helm.sh/hook"));
        Assert.Contains("before-hook-creation", annotations.Str("helm.sh/hook-delete-policy"), StringComparison.Ordinal);
        var container = (Dictionary<object, object>)job.Seq("spec", "template", "spec", "containers").Single();
        Assert.Equal(["dotnet", "/app/PumpFleet.Silo.dll", "migrate"], container.Seq("command").Cast<string>().ToArray());
        Assert.Equal("Never", job.Str("spec", "template", "spec", "restartPolicy"));

        // The Job must not depend on a release Secret that is only created after pre-install hooks: either the
        // operator's existing Secret, or a hook Secret created before the Job (lower weight).
        var secretName = Env(container)["ConnectionStrings__PumpFleet"].Str("valueFrom", "secretKeyRef", "name");
        var hookSecret = chart.OfKind("Secret").SingleOrDefault(s => s.Str("metadata", "name") == secretName);
        if (hookSecret is not null)
        {
            var secretAnnotations = hookSecret.Map("metadata", "annotations");
            Assert.Equal("pre-install,pre-upgrade", secretAnnotations.Str("helm.sh/hook"));
            Assert.True(
                int.Parse(secretAnnotations.Str("helm.sh/hook-weight")!, System.Globalization.CultureInfo.InvariantCulture)
                < int.Parse(annotations.Str("helm.sh/hook-weight")!, System.Globalization.CultureInfo.InvariantCulture));
        }
        else
        {
            Assert.DoesNotContain(chart.OfKind("Secret"), s => s.Str("metadata", "name") == secretName);
        }
    }

    [Fact]
    public void Mqtt_DefaultValues_AreTlsOnly()
    {
        var chart = RenderedChart.For("");
        Assert.Equal([8883], ServicePorts(chart.Get("Service", "mqtt")));
        Assert.DoesNotContain(chart.Container("gateway").Seq("ports"), p => p.At("containerPort")?.ToString() == "1883");
        var config = chart.ConfigMapData();
        Assert.Equal("Embedded", config.Str("Gateway__Mqtt__Mode"));
        Assert.Equal("8883", config.Str("Gateway__Mqtt__TlsPort"));
        Assert.Equal("false", config.Str("Gateway__Mqtt__PlainEnabled"));
    }

    [Fact]
    public void Mqtt_WithoutTls_IsPlainOnly_AndLoadBalancerSourceRangesAreAValue()
    {
        var chart = RenderedChart.Render("", "--set", "gateway.mqtt.tls.enabled=false", "--set", "gateway.mqtt.service.loadBalancerSourceRanges[0]=192.0.2.0/24");
        Assert.Equal([1883], ServicePorts(chart.Get("Service", "mqtt")));
        Assert.Null(chart.ConfigMapData().At("Gateway__Mqtt__PlainEnabled"));
        Assert.Equal(["192.0.2.0/24"], chart.Get("Service", "mqtt").Seq("spec", "loadBalancerSourceRanges").Select(r => r.ToString()));
    }

    [Fact]
    public void Processes_CanConnectAsTheirOwnLeastPrivilegedUsers_TheMigrationKeepsTheOwner()
    {
        var chart = RenderedChart.Render("", "--set", "postgresql.componentSecretKeys.silo=silo-cs", "--set", "postgresql.componentSecretKeys.gateway=gateway-cs",
            "--set", "postgresql.componentSecretKeys.dashboard=dashboard-cs");
        foreach (var component in s_components)
        {
            Assert.Equal($"{component}-cs", Env(chart.Container(component))["ConnectionStrings__PumpFleet"].Str("valueFrom", "secretKeyRef", "key"));
        }

        var job = chart.OfKind("Job").Single().Seq("spec", "template", "spec", "containers").Cast<Dictionary<object, object>>().Single();
        Assert.Equal("connectionString", Env(job)["ConnectionStrings__PumpFleet"].Str("valueFrom", "secretKeyRef", "key"));
        // Those users cannot migrate: only the Job does, so no process (nor its command lines) migrates at start.
        Assert.Equal("false", chart.ConfigMapData().Str("PumpFleet__MigrateOnStart"));
        Assert.DoesNotContain(Env(job).Keys, k => k == "PumpFleet__MigrateOnStart");
    }

    [Fact]
    public void NetworkPolicies_SiloPortsOnlyFromThePlatform_MqttOnlyOnItsListeners()
    {
        var chart = RenderedChart.For("");
        var silo = chart.Get("NetworkPolicy", "silo");
        var rules = silo.Seq("spec", "ingress").ToList();
        var orleans = rules.Single(r => r.Seq("ports").Any(p => p.At("port")?.ToString() == "11111"));
        Assert.Equal(["11111", "30000"], orleans.Seq("ports").Select(p => p.At("port")!.ToString()));
        var components = orleans.Seq("from").Single().Seq("podSelector", "matchExpressions").Single(e => e.Str("key") == "app.kubernetes.io/component");
        Assert.Equal(["silo", "gateway", "dashboard"], components.Seq("values").Select(v => v.ToString()));
        // The only other rule opens the HTTP port, nothing else.
        Assert.Equal(["8082"], rules.Where(r => r != orleans).SelectMany(r => r.Seq("ports")).Select(p => p.At("port")!.ToString()));

        var gatewayPorts = chart.Get("NetworkPolicy", "gateway").Seq("spec", "ingress").SelectMany(r => r.Seq("ports")).Select(p => p.At("port")!.ToString());
        Assert.Equal(["8081", "8883"], gatewayPorts);
        Assert.Equal(["8080"], chart.Get("NetworkPolicy", "dashboard").Seq("spec", "ingress").SelectMany(r => r.Seq("ports")).Select(p => p.At("port")!.ToString()));
        Assert.Null(chart.Find("NetworkPolicy", "postgresql"));

        var withDb = RenderedChart.Render("", "--set", "networkPolicy.postgresql.podSelector.app=pg");
        var db = withDb.Get("NetworkPolicy", "postgresql");
        Assert.Equal("pg", db.Str("spec", "podSelector", "matchLabels", "app"));
        Assert.Equal("5432", db.Seq("spec", "ingress").Single().Seq("ports").Single().At("port")!.ToString());
        Assert.Equal("pf", db.Seq("spec", "ingress").Single().Seq("from").Single().Str("podSelector", "matchLabels", "app.kubernetes.io/instance"));
        Assert.Empty(RenderedChart.Render("", "--set", "networkPolicy.enabled=false").OfKind("NetworkPolicy"));
    }

    [Fact]
    public void OrleansTls_DefaultValues_IsOnForEveryClusterProcess_WithCertificatesFromTheSecret()
    {
        var chart = RenderedChart.For("");
        var config = chart.ConfigMapData();
        Assert.Equal("true", config.Str("PumpFleet__Tls__Enabled"));
        string[] paths = [config.Str("PumpFleet__Tls__CertificatePath")!, config.Str("PumpFleet__Tls__KeyPath")!, config.Str("PumpFleet__Tls__CaPath")!];
        Assert.Equal(["tls.crt", "tls.key", "ca.crt"], paths.Select(Path.GetFileName));
        Assert.Null(config.At("PumpFleet__Tls__AllowedThumbprints__0"));

        // Silo, gateway and dashboard all join the cluster, so each mounts the Secret where the paths point.
        foreach (var component in s_components)
        {
            var container = chart.Container(component);
            var volumes = chart.Get("Deployment", component).Seq("spec", "template", "spec", "volumes");
            foreach (var path in paths)
            {
                var mount = container.Seq("volumeMounts").Single(m => path.StartsWith(m.Str("mountPath") + "/", StringComparison.Ordinal));
                Assert.Equal("True", mount.At("readOnly")?.ToString(), ignoreCase: true);
                var volume = volumes.Single(v => v.Str("name") == mount.Str("name"));
                Assert.Equal("pumpfleet-orleans-tls", volume.Str("secret", "secretName"));
            }
        }

        // The migration Job does not join the cluster and gets no certificate.
        var job = chart.OfKind("Job").Single();
        Assert.DoesNotContain(job.Seq("spec", "template", "spec", "volumes"), v => v.Str("secret", "secretName") == "pumpfleet-orleans-tls");
    }

    [Fact]
    public void OrleansTls_Values_PinsThumbprints_CanBeTurnedOff_AndNeedsASecret()
    {
        var pin = new string('a', 64);
        var pinned = RenderedChart.Render("", "--set", $"orleans.tls.allowedThumbprints[0]={pin}", "--set", "orleans.tls.existingSecret=my-orleans-tls");
        Assert.Equal(pin, pinned.ConfigMapData().Str("PumpFleet__Tls__AllowedThumbprints__0"));
        Assert.Contains(pinned.Get("Deployment", "silo").Seq("spec", "template", "spec", "volumes"), v => v.Str("secret", "secretName") == "my-orleans-tls");

        var off = RenderedChart.Render("", "--set", "orleans.tls.enabled=false");
        Assert.DoesNotContain(off.ConfigMapData().Keys, k => k.ToString()!.StartsWith("PumpFleet__Tls__", StringComparison.Ordinal));
        foreach (var component in s_components)
        {
            Assert.DoesNotContain(off.Container(component).Seq("volumeMounts"), m => m.Str("name") == "orleans-tls");
        }

        var noSecret = RenderedChart.Helm("template", RenderedChart.Release, Repo.ChartDir, "--set", "orleans.tls.existingSecret=");
        Assert.NotEqual(0, noSecret.ExitCode);
        Assert.Contains("orleans.tls.existingSecret", noSecret.StdErr, StringComparison.Ordinal);
        var badPin = RenderedChart.Helm("template", RenderedChart.Release, Repo.ChartDir, "--set", "orleans.tls.allowedThumbprints[0]=abc");
        Assert.NotEqual(0, badPin.ExitCode);
        Assert.Contains("orleans.tls.allowedThumbprints", badPin.StdErr, StringComparison.Ordinal);
    }

    [Fact]
    public void Mqtt_TlsValues_AddsTlsPortAndMountsCertificateSecret()
    {
        var chart = RenderedChart.For("ci/tls-values.yaml");
        Assert.Equal([1883, 8883], ServicePorts(chart.Get("Service", "mqtt")));
        var container = chart.Container("gateway");
        Assert.Contains(container.Seq("ports"), p => p.At("containerPort")?.ToString() == "8883");

        var config = chart.ConfigMapData();
        Assert.Equal("8883", config.Str("Gateway__Mqtt__TlsPort"));
        var certificatePath = config.Str("Gateway__Mqtt__TlsCertificatePath")!;
        var mount = container.Seq("volumeMounts").Single(m => certificatePath.StartsWith(m.Str("mountPath") + "/", StringComparison.Ordinal));
        var volume = chart.Get("Deployment", "gateway").Seq("spec", "template", "spec", "volumes").Single(v => v.Str("name") == mount.Str("name"));
        Assert.Equal("pumpfleet-mqtt-tls", volume.Str("secret", "secretName"));
        Assert.Equal("pumpfleet-mqtt-tls", Env(container)["Gateway__Mqtt__TlsCertificatePassword"].Str("valueFrom", "secretKeyRef", "name"));
    }

    [Fact]
    public void Mqtt_ExternalBrokerValues_UsesSharedGroupAndNoBrokerService()
    {
        var chart = RenderedChart.For("ci/external-broker-values.yaml");
        Assert.Null(chart.Find("Service", "mqtt"));
        Assert.DoesNotContain(chart.Container("gateway").Seq("ports"), p => p.Str("name") is "mqtt" or "mqtts");

        var config = chart.ConfigMapData();
        Assert.Equal("External", config.Str("Gateway__Mqtt__Mode"));
        Assert.Equal("pumpfleet", config.Str("Gateway__Mqtt__External__SharedGroup"));
        Assert.False(string.IsNullOrEmpty(config.Str("Gateway__Mqtt__External__Host")));
        Assert.Equal("true", config.Str("Gateway__Mqtt__External__UseTls"));
        // The broker password never goes into the ConfigMap.
        Assert.Null(config.At("Gateway__Mqtt__External__Password"));
        var password = Env(chart.Container("gateway"))["Gateway__Mqtt__External__Password"];
        Assert.Equal("pumpfleet-mqtt", password.Str("valueFrom", "secretKeyRef", "name"));

        var hpa = chart.Get("HorizontalPodAutoscaler", "gateway");
        Assert.True(int.Parse(hpa.At("spec", "minReplicas")!.ToString()!, System.Globalization.CultureInfo.InvariantCulture) >= 2);
        Assert.Equal("StatefulSet", hpa.Str("spec", "scaleTargetRef", "kind"));
    }

    [Fact]
    public void Mqtt_ExternalBrokerValues_EachGatewayHasAStableUniqueClientIdFromItsStatefulSetPodName()
    {
        var chart = RenderedChart.For("ci/external-broker-values.yaml");
        Assert.Null(chart.Find("Deployment", "gateway"));
        var set = chart.Get("StatefulSet", "gateway");
        Assert.Equal($"{RenderedChart.Release}-pumpfleet-gateway", set.Str("spec", "serviceName"));
        Assert.Equal("Parallel", set.Str("spec", "podManagementPolicy"));

        // The client id is the pod name (…-gateway-0, -1, …): the same after a restart or a replacement, never shared.
        var env = chart.Container("gateway").Seq("env").ToList();
        var clientId = env.FindIndex(e => e.Str("name") == "Gateway__Mqtt__External__ClientId");
        var podName = env.FindIndex(e => e.Str("name") == "POD_NAME");
        Assert.True(clientId >= 0, "Gateway__Mqtt__External__ClientId is set");
        Assert.Equal("$(POD_NAME)", env[clientId].Str("value"));
        Assert.Equal("metadata.name", env[podName].Str("valueFrom", "fieldRef", "fieldPath"));
        Assert.True(podName < clientId, "POD_NAME is defined before the variable that refers to it (Kubernetes expands only earlier ones)");
        Assert.Null(chart.ConfigMapData().At("Gateway__Mqtt__External__ClientId"));
    }

    [Fact]
    public void Mqtt_DefaultValues_EmbeddedGatewayStaysADeploymentWithoutClientId()
    {
        var chart = RenderedChart.For("");
        Assert.Null(chart.Find("StatefulSet", "gateway"));
        Assert.DoesNotContain(chart.Container("gateway").Seq("env"), e => e.Str("name") == "Gateway__Mqtt__External__ClientId");
    }

    [Fact]
    public void Autoscaling_DefaultValues_HasHpaForGatewayAndDashboardOnly()
    {
        var chart = RenderedChart.For("");
        foreach (var component in new[] { "gateway", "dashboard" })
        {
            var hpa = chart.Get("HorizontalPodAutoscaler", component);
            Assert.Equal($"{RenderedChart.Release}-pumpfleet-{component}", hpa.Str("spec", "scaleTargetRef", "name"));
            // With an HPA the Deployment must not pin replicas, or every upgrade resets the autoscaler's choice.
            Assert.Null(chart.Workload(component).At("spec", "replicas"));
        }

        Assert.Null(chart.Find("HorizontalPodAutoscaler", "silo"));
    }

    [Fact]
    public void Monitoring_DefaultValues_RendersServiceMonitorAndPrometheusRuleFromRulesFile()
    {
        var chart = RenderedChart.For("");
        var monitor = Assert.Single(chart.OfKind("ServiceMonitor"));
        Assert.Contains(monitor.Seq("spec", "endpoints"), e => e.Str("port") == "http" && e.Str("path") == "/metrics");

        var rule = Assert.Single(chart.OfKind("PrometheusRule"));
        var rendered = rule.Seq("spec", "groups");
        var source = Yaml.Load(File.ReadAllText(Path.Combine(Repo.ChartDir, "files", "pumpfleet-rules.yaml"))).Seq("groups");
        Assert.Equal(Names(source), Names(rendered));
        Assert.Equal(
            source.SelectMany(g => g.Seq("rules")).Count(),
            rendered.SelectMany(g => g.Seq("rules")).Count());
    }

    [Fact]
    public void Monitoring_MetricsOffValues_RendersNoServiceMonitorOrPrometheusRule()
    {
        var chart = RenderedChart.For("ci/metrics-off-values.yaml");
        Assert.Empty(chart.OfKind("ServiceMonitor"));
        Assert.Empty(chart.OfKind("PrometheusRule"));
        Assert.Empty(chart.OfKind("HorizontalPodAutoscaler"));
        Assert.NotNull(chart.Get("Deployment", "gateway").At("spec", "replicas"));
    }

    [Fact]
    public void Monitoring_TlsValues_RewritesRunbookBaseUrl()
    {
        var rule = Assert.Single(RenderedChart.For("ci/tls-values.yaml").OfKind("PrometheusRule"));
        var urls = rule.Seq("spec", "groups").SelectMany(g => g.Seq("rules"))
            .Select(r => r.Str("annotations", "runbook_url")).OfType<string>().ToList();
        Assert.NotEmpty(urls);
        Assert.All(urls, u => Assert.StartsWith("https://git.example.org/pumpfleet/-/blob/main/docs/runbooks/", u, StringComparison.Ordinal));
    }

    [Fact]
    public void Schema_UnknownMqttMode_IsRejected()
    {
        var result = RenderedChart.Helm("template", RenderedChart.Release, Repo.ChartDir, "--set", "gateway.mqtt.mode=Bogus");
        Assert.NotEqual(0, result.ExitCode);
        Assert.Contains("gateway.mqtt.mode", result.StdErr, StringComparison.Ordinal);
    }

    [Fact]
    public void Schema_MissingDatabase_IsRejectedWithClearMessage()
    {
        var result = RenderedChart.Helm("template", RenderedChart.Release, Repo.ChartDir, "--set", "postgresql.existingSecret=");
        Assert.NotEqual(0, result.ExitCode);
        Assert.Contains("postgresql.connectionString or postgresql.existingSecret", result.StdErr, StringComparison.Ordinal);
    }

    public static TheoryData<string> ValuesFiles => RenderedChart.ValuesFiles;

    private static Dictionary<string, Dictionary<object, object>> Env(Dictionary<object, object> container) =>
        container.Seq("env").Cast<Dictionary<object, object>>().ToDictionary(e => e.Str("name")!);

    private static int[] ServicePorts(Dictionary<object, object> service) =>
        service.Seq("spec", "ports").Select(p => int.Parse(p.At("port")!.ToString()!, System.Globalization.CultureInfo.InvariantCulture)).Order().ToArray();

    private static string[] Names(IEnumerable<object> groups) => groups.Select(g => g.Str("name")!).ToArray();
}
