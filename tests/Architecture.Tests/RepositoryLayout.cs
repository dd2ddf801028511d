namespace PumpFleet.Architecture.Tests;

/// <summary>Paths of the repository the tests run in (found from the test's output directory).</summary>
internal static class RepositoryLayout
{
    public static string Root { get; } = FindRoot();

    /// <summary>C# and SQL sources of one top-level folder (src, bench, tests), without build output.</summary>
    public static IEnumerable<string> Sources(string folder, params string[] patterns) =>
        patterns.SelectMany(p => Directory.EnumerateFiles(Path.Combine(Root, folder), p, SearchOption.AllDirectories))
            .Where(f => !f.Contains($"{Path.DirectorySeparatorChar}bin{Path.DirectorySeparatorChar}", StringComparison.Ordinal)
                && !f.Contains($"{Path.DirectorySeparatorChar}obj{Path.DirectorySeparatorChar}", StringComparison.Ordinal)
                && !f.Contains($"{Path.DirectorySeparatorChar}node_modules{Path.DirectorySeparatorChar}", StringComparison.Ordinal));

    /// <summary>The project folder under src/ that holds <paramref name="file"/> (e.g. <c>Gateway</c>).</summary>
    public static string ProjectOf(string file)
    {
        var rel = Path.GetRelativePath(Root, file).Split(Path.DirectorySeparatorChar);
        return rel.Length > 1 ? rel[1] : "";
    }

    public static string Relative(string file) => Path.GetRelativePath(Root, file).Replace(Path.DirectorySeparatorChar, '/');

    private static string FindRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "PumpFleet.sln")))
            {
                return dir.FullName;
            }
        }

        throw new InvalidOperationException($"PumpFleet.sln not found above {AppContext.BaseDirectory}.");
    }
}
