using System.Text.RegularExpressions;

namespace PumpFleet.Architecture.Tests;

/// <summary>Hosts sit on top: nothing depends on a host, and a host's Program.cs only composes and dispatches.</summary>
public sealed partial class ProjectReferenceTests
{
    // The processes: each is a thin project over the libraries it composes (the Silo also hosts the gateway and the
    // dashboard libraries for all-in-one use). Nothing references a host, so a host can change without touching a library.
    private static readonly string[] Hosts = ["Silo", "Gateway.Host", "Dashboard.Host"];

    private static IEnumerable<(string Project, string Referenced, string Element)> References(string folder) =>
        RepositoryLayout.Sources(folder, "*.csproj").SelectMany(p =>
            ProjectReference().Matches(File.ReadAllText(p)).Select(m =>
                (RepositoryLayout.Relative(p), Path.GetFileNameWithoutExtension(m.Groups["path"].Value.Replace('\\', '/')), m.Value)));

    [Fact]
    public void NoProject_ReferencesAHost()
    {
        // A build-order reference that does not reference the assembly (ReferenceOutputAssembly="false") is not a
        // dependency: bench/Failover builds the Silo that way to start it as a process.
        var offenders = new[] { "src", "tests", "bench" }.SelectMany(References)
            .Where(r => Hosts.Contains(r.Referenced) && !r.Element.Contains("ReferenceOutputAssembly=\"false\"", StringComparison.Ordinal))
            .Select(r => $"{r.Project} -> {r.Referenced}").ToList();
        Assert.True(offenders.Count == 0, $"Referencing a host project (reference its library instead): {string.Join(", ", offenders)}");
    }

    [Fact]
    public void EveryProgram_IsInAHost()
    {
        // Guards the rule above: a new process must be listed as a host, so nothing can reference it unnoticed. The
        // simulator is the one library with a command line of its own (a developer tool; the silo and the tests
        // compose its fleet in-process), so it is not a host.
        var programs = RepositoryLayout.Sources("src", "Program.cs").Select(RepositoryLayout.ProjectOf).Order(StringComparer.Ordinal).ToList();
        Assert.Equal([.. Hosts.Append("Simulator").Order(StringComparer.Ordinal)], programs);
    }

    [Theory]
    [InlineData("Gateway.Host")]
    [InlineData("Dashboard.Host")]
    public void ThinHost_HoldsOnlyProgramAndSettings(string host)
    {
        // The gateway and dashboard processes are composition only; their code lives in the libraries they start.
        var files = Directory.EnumerateFiles(Path.Combine(RepositoryLayout.Root, "src", host), "*", SearchOption.AllDirectories)
            .Select(RepositoryLayout.Relative)
            .Where(f => !f.Contains("/bin/", StringComparison.Ordinal) && !f.Contains("/obj/", StringComparison.Ordinal))
            .Select(f => f[$"src/{host}/".Length..])
            .Where(f => f != "Program.cs" && f != $"{host}.csproj" && f != "Properties/launchSettings.json"
                && !(f.StartsWith("appsettings", StringComparison.Ordinal) && f.EndsWith(".json", StringComparison.Ordinal)))
            .ToList();
        Assert.True(files.Count == 0, $"src/{host} holds more than Program.cs, its project file and settings: {string.Join(", ", files)}");
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
