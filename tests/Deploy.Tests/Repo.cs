namespace PumpFleet.Deploy.Tests;

/// <summary>Locates the repository and the external tools the deployment checks run.</summary>
internal static class Repo
{
    private static readonly Lazy<string> s_root = new(FindRoot);

    public static string Root => s_root.Value;

    public static string ChartDir => Path.Combine(Root, "deploy", "helm", "pumpfleet");

    public static string PrometheusDir => Path.Combine(Root, "deploy", "prometheus");

    /// <summary>
    /// helm from $HELM, else the repository's .tools/helm (what scripts/install-helm.sh installs), else PATH.
    /// A missing tool fails the test: the chart would otherwise ship unchecked.
    /// </summary>
    public static string Helm() =>
        Resolve("helm", "HELM", Path.Combine(Root, ".tools", "helm"), "scripts/install-helm.sh");

    public static string Promtool() =>
        Resolve("promtool", "PROMTOOL", null, "scripts/install-promtool.sh");

    private static string Resolve(string name, string envVar, string? localDefault, string installer)
    {
        var fromEnv = Environment.GetEnvironmentVariable(envVar);
        if (!string.IsNullOrWhiteSpace(fromEnv))
        {
            Assert.True(File.Exists(fromEnv), $"{envVar}={fromEnv} does not exist.");
            return fromEnv;
        }

        if (localDefault is not null && File.Exists(localDefault))
        {
            return localDefault;
        }

        var onPath = (Environment.GetEnvironmentVariable("PATH") ?? string.Empty)
            .Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries)
            .Select(dir => Path.Combine(dir, name))
            .FirstOrDefault(File.Exists);
        Assert.True(
            onPath is not null,
            $"{name} was not found ({envVar} unset, {localDefault ?? "no local copy"}, not on PATH). Run {installer} or set {envVar}.");
        return onPath!;
    }

    private static string FindRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "PumpFleet.sln"))
                && Directory.Exists(Path.Combine(dir.FullName, "deploy")))
            {
                return dir.FullName;
            }
        }

        throw new InvalidOperationException($"No repository root (PumpFleet.sln with deploy/) above {AppContext.BaseDirectory}.");
    }
}
