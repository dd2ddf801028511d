using System.Collections.Concurrent;

namespace PumpFleet.Deploy.Tests;

/// <summary>The manifests <c>helm template</c> renders for one values file, rendered once per test run.</summary>
internal sealed class RenderedChart
{
    public const string Release = "pf";
    public const string Namespace = "pumpfleet";

    /// <summary>"" is the chart's own values.yaml; the others are the chart's ci/ files.</summary>
    public static readonly TheoryData<string> ValuesFiles =
    [
        "",
        "ci/external-broker-values.yaml",
        "ci/tls-values.yaml",
        "ci/metrics-off-values.yaml",
    ];

    private static readonly ConcurrentDictionary<string, Lazy<RenderedChart>> s_cache = new();

    private RenderedChart(string valuesFile, IReadOnlyList<Dictionary<object, object>> manifests)
    {
        ValuesFile = valuesFile;
        Manifests = manifests;
    }

    public string ValuesFile { get; }

    public IReadOnlyList<Dictionary<object, object>> Manifests { get; }

    public static RenderedChart For(string valuesFile) =>
        s_cache.GetOrAdd(valuesFile, f => new Lazy<RenderedChart>(() => Render(f))).Value;

    public static ProcessResult Helm(params string[] arguments) => ProcessRunner.Run(Repo.Helm(), arguments);

    public static string[] ValuesArguments(string valuesFile) =>
        valuesFile.Length == 0 ? [] : ["-f", Path.Combine(Repo.ChartDir, valuesFile)];

    public IEnumerable<Dictionary<object, object>> OfKind(string kind) =>
        Manifests.Where(m => m.Str("kind") == kind);

    public Dictionary<object, object>? Find(string kind, string component) =>
        OfKind(kind).SingleOrDefault(m => m.Str("metadata", "name") == $"{Release}-pumpfleet-{component}");

    public Dictionary<object, object> Get(string kind, string component) =>
        Find(kind, component) ?? throw new Xunit.Sdk.XunitException(
            $"No {kind} {Release}-pumpfleet-{component} rendered for '{Describe(ValuesFile)}'. Rendered: "
            + string.Join(", ", Manifests.Select(m => $"{m.Str("kind")}/{m.Str("metadata", "name")}")));

    /// <summary>The component's Deployment, or its StatefulSet (the gateway in External mode).</summary>
    public Dictionary<object, object> Workload(string component) =>
        Find("Deployment", component) ?? Get("StatefulSet", component);

    public Dictionary<object, object> Container(string component) =>
        Workload(component).Seq("spec", "template", "spec", "containers").Cast<Dictionary<object, object>>().Single();

    public Dictionary<object, object> ConfigMapData() =>
        OfKind("ConfigMap").Single().Map("data");

    public static string Describe(string valuesFile) => valuesFile.Length == 0 ? "values.yaml" : valuesFile;

    /// <summary>Renders with extra arguments (e.g. <c>--set</c>), not cached.</summary>
    public static RenderedChart Render(string valuesFile, params string[] extra)
    {
        string[] arguments = ["template", Release, Repo.ChartDir, "--namespace", Namespace, .. ValuesArguments(valuesFile), .. extra];
        var result = Helm(arguments);
        Assert.True(result.ExitCode == 0, result.Describe($"helm template ({Describe(valuesFile)})"));
        var manifests = Yaml.LoadAll(result.StdOut);
        Assert.NotEmpty(manifests);
        return new RenderedChart(valuesFile, manifests);
    }
}
