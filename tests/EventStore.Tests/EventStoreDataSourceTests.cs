using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
using Npgsql;
using PumpFleet.TestSupport;

namespace PumpFleet.EventStore.Tests;

/// <summary>
/// The platform's data source prepares the store's statements (Max Auto Prepare) unless the connection string says
/// otherwise: the partitioned global read plans once per connection instead of once per page.
/// </summary>
public sealed class EventStoreDataSourceTests(PostgresFixture pg) : EventStoreTestBase(pg)
{
    [Theory]
    [InlineData("", EventStoreDataSource.DefaultMaxAutoPrepare)]
    [InlineData(";Max Auto Prepare=0", 0)]
    [InlineData(";MaxAutoPrepare=7", 7)]
    [InlineData(";max auto prepare=3", 3)]
    public async Task Build_AppliesTheDefault_OnlyWhenTheConnectionStringDoesNotSetIt(string extra, int expected)
    {
        await using var ds = EventStoreDataSource.Build(ConnectionString + extra);
        Assert.Equal(expected, new NpgsqlConnectionStringBuilder(ds.ConnectionString).MaxAutoPrepare);
    }

    [Theory]
    [InlineData("", true)]
    [InlineData(";Max Auto Prepare=0", false)]
    public async Task GlobalReader_IsPreparedOnTheServer_AfterRepeatedPages(string extra, bool prepared)
    {
        var ct = TestContext.Current.CancellationToken;
        // One pooled connection, so the session that ran the pages is the one asked afterwards.
        await using var ds = EventStoreDataSource.Build(ConnectionString + ";Maximum Pool Size=1" + extra);
        var store = new NpgsqlEventStore(ds);
        await store.AppendAsync(NewStream(), 0, [Evt(1), Evt(2)], ct);
        for (var i = 0; i < 10; i++)
        {
            await store.ReadAllAsync(GlobalCheckpoint.Start, 100, ct);
        }

        await using var conn = await ds.OpenConnectionAsync(ct);
        await using var cmd = new NpgsqlCommand(
            "SELECT count(*) FROM pg_prepared_statements WHERE statement LIKE '%pg_snapshot_xmin(pg_current_snapshot())%' AND statement NOT LIKE '%pg_prepared_statements%'", conn);
        var count = (long)(await cmd.ExecuteScalarAsync(ct))!;
        Assert.Equal(prepared, count > 0);
    }

    [Fact]
    public async Task Sessions_RunInUtc_EvenWhereTheDatabasesDefaultZoneIsAnother()
    {
        var ct = TestContext.Current.CancellationToken;
        var name = $"tz_{Guid.NewGuid():N}";
        await using (var admin = new NpgsqlConnection(ConnectionString))
        {
            await admin.OpenAsync(ct);
            await using var create = new NpgsqlCommand($"CREATE DATABASE \"{name}\"", admin);
            await create.ExecuteNonQueryAsync(ct);
            await using var zone = new NpgsqlCommand($"ALTER DATABASE \"{name}\" SET timezone TO 'America/New_York'", admin);
            await zone.ExecuteNonQueryAsync(ct);
        }

        var cs = new NpgsqlConnectionStringBuilder(ConnectionString) { Database = name }.ConnectionString;
        const string Sql = "SELECT current_setting('TimeZone') || ' ' || (timestamptz '2026-11-01 00:00:00+00' + interval '1 month')::text";
        await using var plain = NpgsqlDataSource.Create(cs);
        await using (var cmd = plain.CreateCommand(Sql))
        {
            // What the store's month arithmetic did in such a session.
            Assert.Equal("America/New_York 2026-11-30 20:00:00-05", (string)(await cmd.ExecuteScalarAsync(ct))!);
        }

        await using var ds = EventStoreDataSource.Build(cs);
        await using (var cmd = ds.CreateCommand(Sql))
        {
            Assert.Equal("UTC 2026-12-01 00:00:00+00", (string)(await cmd.ExecuteScalarAsync(ct))!);
        }
    }

    [Theory]
    [InlineData(";Timezone=UTC")]
    [InlineData(";Timezone=utc")]
    public void Build_AcceptsUtc_Spelled_AsTheConnectionStringLikes(string extra)
    {
        using var ds = EventStoreDataSource.Build(ConnectionString + extra);
        Assert.Equal("UTC", new NpgsqlConnectionStringBuilder(ds.ConnectionString).Timezone);
    }

    [Fact]
    public void Build_RefusesAnotherZone_SayingWhy()
    {
        var e = Assert.Throws<ArgumentException>(() => EventStoreDataSource.Build(ConnectionString + ";Timezone=Europe/Paris"));
        Assert.Contains("Timezone=Europe/Paris", e.Message, StringComparison.Ordinal);
        Assert.Contains("UTC", e.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("", false, true)]
    [InlineData("", true, false)]
    [InlineData(";No Reset On Close=false", false, false)]
    [InlineData(";NoResetOnClose=true", false, true)]
    [InlineData(";no reset on close=true", true, true)]
    public async Task Build_HandsConnectionsOnWithoutTheReset_UnlessAskedOrTheConnectionStringSaysOtherwise(string extra, bool reset, bool expected)
    {
        await using var ds = EventStoreDataSource.Build(ConnectionString + extra, reset);
        Assert.Equal(expected, new NpgsqlConnectionStringBuilder(ds.ConnectionString).NoResetOnClose);
    }

    [Fact]
    public async Task BuildUnpooled_NeverPools_AndRunsInUtc()
    {
        await using var ds = EventStoreDataSource.BuildUnpooled(ConnectionString);
        var settings = new NpgsqlConnectionStringBuilder(ds.ConnectionString);
        Assert.False(settings.Pooling);
        Assert.Equal("UTC", settings.Timezone);
        Assert.Throws<ArgumentException>(() => EventStoreDataSource.BuildUnpooled(ConnectionString + ";Timezone=Europe/Paris"));
    }

    [Theory]
    [InlineData(";No Reset On Close=true", "true", false)]
    [InlineData(";No Reset On Close=true", "false", true)]
    [InlineData(";No Reset On Close=false", "true", true)]
    [InlineData("", "true", true)]
    public async Task ResetPooledConnections_ContradictingTheConnectionString_IsRefused(string extra, string reset, bool valid)
    {
        await using var services = new ServiceCollection()
            .AddSingleton<IConfiguration>(new ConfigurationBuilder()
                .AddInMemoryCollection([KeyValuePair.Create("EventStore:ResetPooledConnections", (string?)reset)]).Build())
            .AddPumpFleetEventStore(ConnectionString + extra)
            .BuildServiceProvider();
        if (valid)
        {
            Assert.Equal(bool.Parse(reset), services.GetRequiredService<IOptions<PooledConnectionOptions>>().Value.ResetPooledConnections);
        }
        else
        {
            var e = Assert.Throws<OptionsValidationException>(() => services.GetRequiredService<IOptions<PooledConnectionOptions>>().Value);
            Assert.Contains("No Reset On Close=true", e.Message, StringComparison.Ordinal);
        }
    }
}
