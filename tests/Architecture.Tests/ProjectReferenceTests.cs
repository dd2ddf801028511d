using System.Text.RegularExpressions;

namespace PumpFleet.Architecture.Tests;

/// <summary>Hosts sit on top: nothing depends on a host, and a host's Program.cs only composes and dispatches.</summary>
public sealed partial class ProjectReferenceTests
{
    // The Silo is the host of hosts (it composes the gateway and the dashboard for all-in-one use), so only tests may
    // reference Gateway and Dashboard besides it; nothing may reference the Silo's assembly.
    private static readonly string[] Hosts = ["Silo", "Gateway", "Dashboard"];

    private static IEnumerable<(string Project, string Referenced, string Element)> References(string folder) =>
        RepositoryLayout.Sources(folder, "*.csproj").SelectMany(p =>
            ProjectReference().Matches(File.ReadAllText(p)).Select(m =>
                (RepositoryLayout.Relative(p), Path.GetFileNameWithoutExtension(m.Groups["path"].Value), m.Value)));

    [Fact]
    public void NoProject_ReferencesTheSiloAssembly()
    {
        // bench/Failover starts the Silo as a process: it may build it first (ReferenceOutputAssembly="false").
        var offenders = new[] { "src", "tests", "bench" }.SelectMany(References)
            .Where(r => r.Referenced == "Silo" && !r.Element.Contains("ReferenceOutputAssembly=\"false\"", StringComparison.Ordinal))
            .Select(r => r.Project).ToList();
        Assert.True(offenders.Count == 0, $"Referencing the Silo host: {string.Join(", ", offenders)}");
    }

    [Fact]
    public void NoLibrary_ReferencesAHost()
    {
        var offenders = References("src")
            .Where(r => Hosts.Contains(r.Referenced) && !r.Project.StartsWith("src/Silo/", StringComparison.Ordinal))
            .Select(r => $"{r.Project} -> {r.Referenced}").ToList();
        Assert.True(offenders.Count == 0, $"Only the Silo (all-in-one host) composes other hosts: {string.Join(", ", offenders)}");
    }

    public static TheoryData<string> Programs()
    {
        var data = new TheoryData<string>();
        foreach (var p in RepositoryLayout.Sources("src", "Program.cs"))
        {
            data.Add(RepositoryLayout.Relative(p));
        }

        return data;
    }

    [Theory]
    [MemberData(nameof(Programs))]
    public void Program_OnlyComposesAndDispatches(string program)
    {
        var text = File.ReadAllText(Path.Combine(RepositoryLayout.Root, program));
        var code = text.Split('\n').Select(l => l.Trim()).Where(l => l.Length > 0 && !l.StartsWith("//", StringComparison.Ordinal)).ToList();
        // Logic belongs in the projects: no types, no SQL, no loops, and short enough to read at a glance.
        Assert.DoesNotMatch(TypeDeclaration(), text);
        Assert.DoesNotMatch(Sql(), text);
        Assert.DoesNotMatch(Loop(), text);
        Assert.True(code.Count <= 40, $"{program} has {code.Count} lines of code; move the logic into the project and keep composition and dispatch here.");
    }

    [GeneratedRegex(@"<ProjectReference\s+Include=""(?<path>[^""]+)""[^>]*>", RegexOptions.CultureInvariant)]
    private static partial Regex ProjectReference();

    [GeneratedRegex(@"^\s*(public |internal |file )?(sealed |static |abstract |partial )*(class|record|struct|interface|enum) ", RegexOptions.Multiline | RegexOptions.CultureInvariant)]
    private static partial Regex TypeDeclaration();

    [GeneratedRegex(@"\b(SELECT|INSERT INTO|UPDATE|DELETE FROM|NpgsqlCommand)\b", RegexOptions.CultureInvariant)]
    private static partial Regex Sql();

    [GeneratedRegex(@"^\s*(for|foreach|while)\s*\(", RegexOptions.Multiline | RegexOptions.CultureInvariant)]
    private static partial Regex Loop();
}
