using System.Reflection;
using System.Text.RegularExpressions;
using Microsoft.Extensions.Logging.Abstractions;
using Npgsql;
using PumpFleet.EventStore;

namespace PumpFleet.Architecture.Tests;

/// <summary>Migration numbers: one range per owning project, no number twice across the platform.</summary>
public sealed partial class MigrationNumberingTests
{
    // Each project that owns tables owns blocks of ten numbers (docs/architecture.md, "Migrations"). A project whose
    // block is full is given the next free block, so blocks never interleave between owners. EventStore's first block
    // filled up with 009; 040–049 is its second. ReadModels filled 020–029 with 029; 060–069 is its second.
    private static readonly Dictionary<string, (int From, int To)[]> Ranges = new(StringComparer.Ordinal)
    {
        ["PumpFleet.EventStore"] = [(1, 9), (40, 49)],
        ["PumpFleet.Gateway"] = [(10, 19)],
        ["PumpFleet.ReadModels"] = [(20, 29), (60, 69)],
        ["PumpFleet.Clustering"] = [(30, 39)],
        ["PumpFleet.Projections"] = [(50, 59)],
    };

    // Every PumpFleet assembly next to the tests (this project references every library and host but the Silo).
    private static List<Assembly> PlatformAssemblies() =>
        [.. Directory.EnumerateFiles(AppContext.BaseDirectory, "PumpFleet.*.dll")
            .Where(f => !Path.GetFileName(f).StartsWith("PumpFleet.Architecture.Tests", StringComparison.Ordinal))
            .Select(f => Assembly.Load(AssemblyName.GetAssemblyName(f)))];

    private static IEnumerable<(string Assembly, int Number, string Resource)> Migrations() =>
        PlatformAssemblies().SelectMany(a => a.GetManifestResourceNames()
            .Select(n => MigrationName().Match(n))
            .Where(m => m.Success)
            .Select(m => (a.GetName().Name!, int.Parse(m.Groups["n"].Value, System.Globalization.CultureInfo.InvariantCulture), m.Value)));

    [Fact]
    public void EveryMigratingAssembly_IsLoaded()
    {
        var found = Migrations().Select(m => m.Assembly).ToHashSet(StringComparer.Ordinal);
        Assert.Equal(Ranges.Keys.Order(StringComparer.Ordinal), found.Order(StringComparer.Ordinal));
    }

    [Fact]
    public void EveryMigration_IsInItsOwnersRange()
    {
        var outOfRange = Migrations()
            .Where(m => !Ranges.TryGetValue(m.Assembly, out var blocks) || !blocks.Any(r => m.Number >= r.From && m.Number <= r.To))
            .Select(m => $"{m.Assembly}: {m.Resource}")
            .ToList();
        Assert.True(outOfRange.Count == 0, $"Migrations outside their project's blocks (or in a project with no range): {string.Join(", ", outOfRange)}");
    }

    [Fact]
    public void NoTwoOwners_ShareABlock()
    {
        var blocks = Ranges.SelectMany(kv => kv.Value.Select(r => (Owner: kv.Key, r.From, r.To))).OrderBy(b => b.From).ToList();
        var overlaps = blocks.Zip(blocks.Skip(1)).Where(p => p.Second.From <= p.First.To)
            .Select(p => $"{p.First.Owner} {p.First.From:000}-{p.First.To:000} / {p.Second.Owner} {p.Second.From:000}-{p.Second.To:000}").ToList();
        Assert.True(overlaps.Count == 0, $"Overlapping migration blocks: {string.Join("; ", overlaps)}");
    }

    [Fact]
    public void NoNumber_IsUsedTwice()
    {
        var duplicates = Migrations().GroupBy(m => m.Number).Where(g => g.Count() > 1)
            .Select(g => $"{g.Key:000}: {string.Join(", ", g.Select(m => m.Resource))}").ToList();
        Assert.True(duplicates.Count == 0, $"Duplicate migration numbers: {string.Join("; ", duplicates)}");

        // The migrator agrees (it refuses to start on a duplicate); no database is opened for this.
        using var dataSource = NpgsqlDataSource.Create("Host=127.0.0.1;Database=unused");
        var migrator = new SchemaMigrator(dataSource, PlatformAssemblies().Select(a => new MigrationAssembly(a)), NullLogger<SchemaMigrator>.Instance);
        Assert.Equal(Migrations().Count(), migrator.Migrations.Count);
    }

    [GeneratedRegex(@"\.Sql\.(?<n>\d{3})_[A-Za-z0-9_]+\.sql$", RegexOptions.CultureInvariant)]
    private static partial Regex MigrationName();
}
