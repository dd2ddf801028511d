using System.Text.Json;

namespace PumpFleet.Deploy.Tests;

/// <summary>Dashboards import cleanly: valid JSON, unique uids, and every panel bound to a datasource variable.</summary>
public sealed class GrafanaDashboardTests
{
    private static readonly string s_dir = Path.Combine(Repo.Root, "deploy", "grafana", "dashboards");

    public static TheoryData<string> Dashboards()
    {
        var data = new TheoryData<string>();
        foreach (var file in Directory.GetFiles(Path.Combine(Repo.Root, "deploy", "grafana", "dashboards"), "*.json").Order())
        {
            data.Add(Path.GetFileName(file));
        }

        return data;
    }

    [Fact]
    public void Dashboards_Directory_HasTheFourDashboardsWithUniqueUids()
    {
        var uids = Directory.GetFiles(s_dir, "*.json")
            .Select(f => JsonDocument.Parse(File.ReadAllText(f)).RootElement.GetProperty("uid").GetString())
            .ToList();
        Assert.Equal(4, uids.Count);
        Assert.Equal(uids.Count, uids.Distinct().Count());
    }

    [Theory]
    [MemberData(nameof(Dashboards))]
    public void Dashboard_File_IsValidAndUsesDatasourceVariables(string file)
    {
        using var document = JsonDocument.Parse(File.ReadAllText(Path.Combine(s_dir, file)));
        var root = document.RootElement;
        Assert.True(root.GetProperty("schemaVersion").GetInt32() >= 36, $"{file}: schemaVersion too old.");
        Assert.False(string.IsNullOrEmpty(root.GetProperty("title").GetString()));

        var datasourceVariables = root.GetProperty("templating").GetProperty("list").EnumerateArray()
            .Where(v => v.GetProperty("type").GetString() == "datasource")
            .Select(v => "${" + v.GetProperty("name").GetString() + "}")
            .ToHashSet();
        Assert.NotEmpty(datasourceVariables);

        var panels = Panels(root.GetProperty("panels")).Where(p => p.GetProperty("type").GetString() != "row").ToList();
        Assert.NotEmpty(panels);
        var ids = panels.Select(p => p.GetProperty("id").GetInt32()).ToList();
        Assert.Equal(ids.Count, ids.Distinct().Count());
        foreach (var panel in panels)
        {
            var title = panel.GetProperty("title").GetString();
            // A hard-wired datasource uid breaks the import on every other Grafana.
            var uid = panel.GetProperty("datasource").GetProperty("uid").GetString() ?? string.Empty;
            Assert.Contains(uid, datasourceVariables);
            var targets = panel.GetProperty("targets").EnumerateArray().ToList();
            Assert.True(targets.Count > 0, $"{file}: panel '{title}' has no query.");
            foreach (var target in targets)
            {
                var query = target.TryGetProperty("expr", out var expr) ? expr.GetString() : target.GetProperty("rawSql").GetString();
                Assert.False(string.IsNullOrWhiteSpace(query), $"{file}: panel '{title}' has an empty query.");
            }
        }
    }

    private static IEnumerable<JsonElement> Panels(JsonElement panels)
    {
        foreach (var panel in panels.EnumerateArray())
        {
            yield return panel;
            if (panel.TryGetProperty("panels", out var nested))
            {
                foreach (var inner in Panels(nested))
                {
                    yield return inner;
                }
            }
        }
    }
}
