using System.Text.RegularExpressions;
using PumpFleet.ReadModels;

namespace PumpFleet.Projections.Tests;

/// <summary>Ties the read models' queries to their migration, so the two cannot drift apart unnoticed.</summary>
public sealed class ReadModelSchemaTests
{
    private static string Migration(string id)
    {
        var asm = typeof(PumpProjection).Assembly;
        var name = asm.GetManifestResourceNames().Single(n => n.EndsWith($".Sql.{id}.sql", StringComparison.Ordinal));
        using var reader = new StreamReader(asm.GetManifestResourceStream(name)!);
        return reader.ReadToEnd();
    }

    [Fact]
    public void AttentionIndex_IsOnTheExpressionTheFleetListSortsBy()
    {
        // PostgreSQL matches an expression index only when the query's expression is the same: one text for both.
        var sql = Migration("020_read_models");
        var index = Regex.Match(sql, @"CREATE INDEX IF NOT EXISTS pf_pump_status_attention ON pf_pump_status \((?<key>.*), serial\);");
        Assert.True(index.Success, "pf_pump_status_attention is defined in 020_read_models.sql");
        Assert.Equal(PumpStatusRank.Sql, index.Groups["key"].Value);
        Assert.Equal(PumpStatusRank.Sql, ReadModelQueries.PumpSorts["attention"]);
    }

    [Fact]
    public void SortDays_AreTheirTimestampsUtcDay_AndIndexed()
    {
        // The list orders by the day first only because the day is monotone in the timestamp it sorts by.
        var sql = Migration("060_pump_status_hot_updates");
        Assert.NotEmpty(ReadModelQueries.PumpSortDays);
        foreach (var (key, day) in ReadModelQueries.PumpSortDays)
        {
            var column = ReadModelQueries.PumpSorts[key];
            Assert.Matches($@"{day} +date GENERATED ALWAYS AS \(\({column} AT TIME ZONE 'UTC'\)::date\) STORED", sql);
            Assert.Matches($@"CREATE INDEX IF NOT EXISTS \w+ ON pf_pump_status \({day}\);", sql);
        }
    }
}
