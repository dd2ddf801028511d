using System.Text.RegularExpressions;

namespace PumpFleet.Architecture.Tests;

/// <summary>One way each: the house style that a reviewer would otherwise have to remember.</summary>
public sealed partial class StyleTests
{
    [Fact]
    public void Logging_IsOnlyThroughLoggerMessage()
    {
        var offenders = RepositoryLayout.Sources("src", "*.cs")
            .Where(f => DirectLogging().IsMatch(File.ReadAllText(f)))
            .Select(RepositoryLayout.Relative).ToList();
        Assert.True(offenders.Count == 0, $"Log through [LoggerMessage] methods, not the ILogger extension methods: {string.Join(", ", offenders)}");
    }

    [Fact]
    public void HubTopicNames_AreSpelledOnlyInContracts()
    {
        // The gateway and the simulator's hubs take the topic names from Contracts.Hub.HubTopics.
        var offenders = RepositoryLayout.Sources("src", "*.cs")
            .Where(f => RepositoryLayout.ProjectOf(f) != "Contracts" && File.ReadAllText(f).Contains("\"pumpfleet/v1/", StringComparison.Ordinal))
            .Select(RepositoryLayout.Relative).ToList();
        Assert.True(offenders.Count == 0, $"Topic strings outside src/Contracts: {string.Join(", ", offenders)}");
    }

    [Fact]
    public void TestClusters_AreStartedOnlyByTestSupport()
    {
        // One configurable fixture (tests/TestSupport/PumpCluster.cs) instead of a cluster set-up per test project.
        var offenders = RepositoryLayout.Sources("tests", "*.cs")
            .Where(f => RepositoryLayout.ProjectOf(f) is not ("TestSupport" or "Architecture.Tests") && TestClusterBuilder().IsMatch(File.ReadAllText(f)))
            .Select(RepositoryLayout.Relative).ToList();
        Assert.True(offenders.Count == 0, $"Start a test cluster with TestSupport's PumpCluster.StartAsync, not a TestClusterBuilder: {string.Join(", ", offenders)}");
    }

    [Fact]
    public void TestSupport_StartsTheTestCluster()
    {
        // Guards the rule above against passing vacuously (a renamed builder type).
        Assert.Contains(RepositoryLayout.Sources("tests", "*.cs"),
            f => RepositoryLayout.ProjectOf(f) == "TestSupport" && TestClusterBuilder().IsMatch(File.ReadAllText(f)));
    }

    [GeneratedRegex(@"\b(InProcess)?TestClusterBuilder\b", RegexOptions.CultureInvariant)]
    private static partial Regex TestClusterBuilder();

    [GeneratedRegex(@"\.Log(Information|Warning|Error|Debug|Critical|Trace)\(|\.Log\(LogLevel\.", RegexOptions.CultureInvariant)]
    private static partial Regex DirectLogging();
}
