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
}
