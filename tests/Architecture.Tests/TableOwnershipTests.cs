using System.Text.RegularExpressions;

namespace PumpFleet.Architecture.Tests;

/// <summary>Every table has one owner: only the owning project's code names it (migrations are history and may stay where they were written).</summary>
public sealed partial class TableOwnershipTests
{
    // A table belongs to the project whose migration creates it, except where ownership moved after the migration was
    // written (migrations are never edited): the projection engine owns its progress table, created with the read models.
    private static readonly Dictionary<string, string> MovedOwners = new(StringComparer.Ordinal)
    {
        ["pf_projection_progress"] = "Projections",
    };

    public static TheoryData<string, string> Tables()
    {
        var data = new TheoryData<string, string>();
        foreach (var (table, owner) in Owners())
        {
            data.Add(table, owner);
        }

        return data;
    }

    internal static SortedDictionary<string, string> Owners()
    {
        var owners = new SortedDictionary<string, string>(StringComparer.Ordinal);
        foreach (var sql in RepositoryLayout.Sources("src", "*.sql"))
        {
            // A table renamed by a later migration keeps its owner under the new name; the old name must vanish too.
            foreach (Match m in CreateOrRename().Matches(File.ReadAllText(sql)))
            {
                var table = m.Groups["name"].Value;
                owners[table] = MovedOwners.GetValueOrDefault(table, RepositoryLayout.ProjectOf(sql));
            }
        }

        return owners;
    }

    [Fact]
    public void TheSchema_IsFound()
    {
        var owners = Owners();
        Assert.Equal("EventStore", owners["pf_events"]);
        Assert.Equal("ReadModels", owners["pf_pump_status"]);
        Assert.Equal("Gateway", owners["pf_gateway_quarantine"]);
    }

    [Theory]
    [MemberData(nameof(Tables))]
    public void OnlyTheOwner_NamesTheTable(string table, string owner)
    {
        var pattern = new Regex($@"\b{Regex.Escape(table)}\b", RegexOptions.CultureInvariant);
        var offenders = RepositoryLayout.Sources("src", "*.cs")
            .Where(f => RepositoryLayout.ProjectOf(f) != owner && pattern.IsMatch(File.ReadAllText(f)))
            .Select(RepositoryLayout.Relative)
            .ToList();
        Assert.True(offenders.Count == 0, $"{table} belongs to src/{owner}; ask its owner instead of naming it in: {string.Join(", ", offenders)}");
    }

    [Fact]
    public void EveryTable_FollowsTheNamingConvention()
    {
        // pf_ for every PumpFleet table; OrleansQuery is the name Orleans' ADO.NET providers look up. Renamed tables'
        // old names stay in the old migrations (never edited), so only names still in use are checked.
        var sources = RepositoryLayout.Sources("src", "*.cs").Select(File.ReadAllText).ToList();
        var inUse = Owners().Keys.Where(t => sources.Any(text => Regex.IsMatch(text, $@"\b{Regex.Escape(t)}\b", RegexOptions.CultureInvariant)));
        var offenders = inUse.Where(t => !t.StartsWith("pf_", StringComparison.Ordinal) && t != "OrleansQuery").ToList();
        Assert.True(offenders.Count == 0, $"Tables outside the pf_ convention: {string.Join(", ", offenders)}");
    }

    [Fact]
    public void OnlyTheEventStore_NamesTheEventTables()
    {
        // The same rule spelled out for the event tables, over src/ and bench/: a benchmark that needs SQL on them calls
        // a helper in src/EventStore/Benchmarks. tests/ may name them (tests check what the database holds).
        var pattern = EventTables();
        var offenders = RepositoryLayout.Sources("src", "*.cs").Where(f => RepositoryLayout.ProjectOf(f) != "EventStore")
            .Concat(RepositoryLayout.Sources("bench", "*.cs"))
            .Where(f => pattern.IsMatch(File.ReadAllText(f)))
            .Select(RepositoryLayout.Relative)
            .ToList();
        Assert.True(offenders.Count == 0, $"Only src/EventStore may name pf_events, pf_checkpoints or pf_snapshots (benchmarks use src/EventStore/Benchmarks): {string.Join(", ", offenders)}");
    }

    [GeneratedRegex(@"(CREATE TABLE IF NOT EXISTS|RENAME TO) (?<name>\w+)", RegexOptions.CultureInvariant)]
    private static partial Regex CreateOrRename();

    [GeneratedRegex(@"\bpf_(events|checkpoints|snapshots)\b", RegexOptions.CultureInvariant)]
    private static partial Regex EventTables();
}
