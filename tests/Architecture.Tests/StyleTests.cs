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

    [GeneratedRegex(@"\.Log(Information|Warning|Error|Debug|Critical|Trace)\(|\.Log\(LogLevel\.", RegexOptions.CultureInvariant)]
    private static partial Regex DirectLogging();
}
