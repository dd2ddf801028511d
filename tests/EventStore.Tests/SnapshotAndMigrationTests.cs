using Microsoft.Extensions.Logging.Abstractions;
using Npgsql;
using PumpFleet.TestSupport;

namespace PumpFleet.EventStore.Tests;

public sealed class SnapshotAndMigrationTests(PostgresFixture pg) : EventStoreTestBase(pg)
{
    [Fact]
    public async Task Snapshot_SaveThenLoad_ReturnsLatest_AndOlderDoesNotOverwrite()
    {
        var stream = NewStream();
        var ct = TestContext.Current.CancellationToken;
        Assert.Null(await Store.LoadSnapshotAsync(stream, ct));

        await Store.SaveSnapshotAsync(new Snapshot(stream, 10, 1, """{"v":10}"""), ct);
        await Store.SaveSnapshotAsync(new Snapshot(stream, 20, 1, """{"v":20}"""), ct);
        await Store.SaveSnapshotAsync(new Snapshot(stream, 15, 1, """{"v":15}"""), ct);

        var s = await Store.LoadSnapshotAsync(stream, ct);
        Assert.NotNull(s);
        Assert.Equal(20, s.Version);
        Assert.Equal("""{"v": 20}""", s.State);
    }

    [Fact]
    public async Task Snapshot_NewSchemaVersion_ReplacesEvenAtLowerVersion()
    {
        var stream = NewStream();
        var ct = TestContext.Current.CancellationToken;
        await Store.SaveSnapshotAsync(new Snapshot(stream, 20, 1, "{}"), ct);
        await Store.SaveSnapshotAsync(new Snapshot(stream, 5, 2, """{"new":true}"""), ct);

        var s = await Store.LoadSnapshotAsync(stream, ct);
        Assert.Equal(2, s!.SchemaVersion);
        Assert.Equal(5, s.Version);
    }

    [Fact]
    public async Task Checkpoint_SaveThenLoad_RoundTrips()
    {
        var ct = TestContext.Current.CancellationToken;
        Assert.Equal(GlobalCheckpoint.Start, await Store.LoadCheckpointAsync("p1", ct));
        await Store.SaveCheckpointAsync("p1", new GlobalCheckpoint(12345, 678), ct);
        await Store.SaveCheckpointAsync("p1", new GlobalCheckpoint(12346, 680), ct);
        Assert.Equal(new GlobalCheckpoint(12346, 680), await Store.LoadCheckpointAsync("p1", ct));
    }

    [Fact]
    public async Task MigrateAsync_RunTwiceAndConcurrently_IsIdempotent()
    {
        var cs = await Pg.CreateEmptyDatabaseAsync("mig");
        await using var ds = NpgsqlDataSource.Create(cs);
        SchemaMigrator Make() => new(ds, [], NullLogger<SchemaMigrator>.Instance);

        var results = await Task.WhenAll(Enumerable.Range(0, 4).Select(_ => Task.Run(() => Make().MigrateAsync(TestContext.Current.CancellationToken))));
        var again = await Make().MigrateAsync(TestContext.Current.CancellationToken);

        // Exactly one of the concurrent runs applied each migration; the others found it done.
        var all = results.SelectMany(r => r).ToList();
        Assert.Equal(Make().Migrations.Select(m => m.Id), all.Order(StringComparer.Ordinal));
        Assert.Empty(again);
        await using var cmd = ds.CreateCommand("SELECT count(*) FROM pf_schema_migrations");
        Assert.Equal((long)Make().Migrations.Count, (long)(await cmd.ExecuteScalarAsync(TestContext.Current.CancellationToken))!);
    }
}
