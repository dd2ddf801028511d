namespace PumpFleet.Deploy.Tests;

/// <summary>The alert rules: syntax, unit tests, the chart copy, and the conventions every alert must follow.</summary>
public sealed class PrometheusRulesTests
{
    private static readonly string s_rulesFile = Path.Combine(Repo.PrometheusDir, "pumpfleet-rules.yaml");
    private static readonly string s_testFile = Path.Combine(Repo.PrometheusDir, "pumpfleet-rules.test.yaml");
    private static readonly string s_chartCopy = Path.Combine(Repo.ChartDir, "files", "pumpfleet-rules.yaml");

    [Fact]
    public void CheckRules_RulesFile_Passes()
    {
        var result = ProcessRunner.Run(Repo.Promtool(), ["check", "rules", s_rulesFile]);
        Assert.True(result.ExitCode == 0, result.Describe("promtool check rules"));
    }

    [Fact]
    public void TestRules_UnitTests_Pass()
    {
        var result = ProcessRunner.Run(Repo.Promtool(), ["test", "rules", s_testFile], Repo.PrometheusDir);
        Assert.True(result.ExitCode == 0, result.Describe("promtool test rules"));
    }

    [Fact]
    public void ChartCopy_OfRulesFile_IsIdentical()
    {
        Assert.True(
            File.ReadAllBytes(s_chartCopy).SequenceEqual(File.ReadAllBytes(s_rulesFile)),
            $"{s_rulesFile} differs from the source of truth {s_chartCopy}; copy the chart's file over it.");
    }

    [Fact]
    public void Alerts_All_HaveSeverityAnnotationsAndExistingRunbook()
    {
        var alerts = Alerts();
        Assert.NotEmpty(alerts);
        foreach (var alert in alerts)
        {
            var name = alert.Str("alert")!;
            Assert.Contains(alert.Str("labels", "severity"), new[] { "critical", "warning" });
            Assert.False(string.IsNullOrWhiteSpace(alert.Str("annotations", "summary")), name);
            Assert.False(string.IsNullOrWhiteSpace(alert.Str("annotations", "description")), name);
            var runbook = alert.Str("annotations", "runbook_url") ?? string.Empty;
            Assert.EndsWith($"/docs/runbooks/{name}.md", runbook, StringComparison.Ordinal);
            var runbookFile = Path.Combine(Repo.Root, "docs", "runbooks", $"{name}.md");
            Assert.True(File.Exists(runbookFile), $"{name}: runbook {runbookFile} is missing.");
        }
    }

    [Fact]
    public void Alerts_PatientRisk_AreCritical()
    {
        var severities = Alerts().GroupBy(a => a.Str("alert")!).ToDictionary(g => g.Key, g => g.Select(a => a.Str("labels", "severity")).ToHashSet());
        foreach (var name in new[]
                 {
                     "PumpFleetCriticalPumpAlarmActive", "PumpFleetFlowStallOpen", "PumpFleetOverInfusionOpen", "PumpFleetRefillMismatchOpen",
                     "PumpFleetDepletionRiskWithin72h", "PumpFleetIngestStopped",
                 })
        {
            Assert.True(severities.TryGetValue(name, out var set), $"{name} is missing.");
            Assert.Contains("critical", set);
        }
    }

    [Fact]
    public void UnitTests_EveryAlert_HasFiringAndQuietCases()
    {
        var tests = Yaml.Load(File.ReadAllText(s_testFile)).Seq("tests")
            .SelectMany(t => t.Seq("alert_rule_test"))
            .Cast<Dictionary<object, object>>()
            .ToList();
        foreach (var rules in Alerts().GroupBy(a => a.Str("alert")!))
        {
            var name = rules.Key;
            var cases = tests.Where(t => t.Str("alertname") == name).ToList();
            Assert.True(cases.Any(c => c.Seq("exp_alerts").Count == 0), $"{name} has no test where it stays quiet.");
            // An alert defined at two severities (warning and critical thresholds) needs a firing case for each.
            foreach (var severity in rules.Select(r => r.Str("labels", "severity")).Distinct())
            {
                Assert.True(
                    cases.Any(c => c.Seq("exp_alerts").Any(e => e.Str("exp_labels", "severity") == severity)),
                    $"{name} has no test where it fires with severity {severity}.");
            }
        }
    }

    private static List<Dictionary<object, object>> Alerts() =>
        Yaml.Load(File.ReadAllText(s_rulesFile)).Seq("groups")
            .SelectMany(g => g.Seq("rules"))
            .Cast<Dictionary<object, object>>()
            .Where(r => r.Str("alert") is not null)
            .ToList();
}
