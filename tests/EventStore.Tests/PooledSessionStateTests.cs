using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging.Abstractions;
using Npgsql;
using PumpFleet.EventStore.Log;
using PumpFleet.EventStore.Registration;
using PumpFleet.TestSupport;

namespace PumpFleet.EventStore.Tests;

/// <summary>
/// The platform's pool hands a connection to its next borrower without Npgsql's session reset
/// (<c>No Reset On Close</c>, <see cref="EventStoreDataSource.Build"/>), so nothing the platform does may leave state in
/// a pooled session: after the LISTEN listener ran, failed and stopped, after the migrator ran and failed, after
/// imports that failed, every connection of the pool is borrowed at once (the pool is small, so the one the work used
/// is among them) and PostgreSQL is asked what each session holds: channels listened to, advisory locks, temporary
/// tables.
/// </summary>
public sealed class PooledSessionStateTests(PostgresFixture pg) : EventStoreTestBase(pg)
{
    private const int PoolSize = 3;

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task ThePool_KeepsASessionsListen_UnlessResetPooledConnectionsIsOn(bool reset)
    {
        // What the rest of this class guards against, shown on the platform's own data source: a LISTEN left on a
        // returned connection is still there for the next borrower, unless the reset is switched back on.
        await using var platform = Platform(ConnectionString, ("EventStore:ResetPooledConnections", reset ? "true" : "false"));
        var ds = platform.GetRequiredService<NpgsqlDataSource>();
        Assert.Equal(!reset, new NpgsqlConnectionStringBuilder(ds.ConnectionString).NoResetOnClose);
        await using (var conn = await ds.OpenConnectionAsync(Ct))
        await using (var listen = new NpgsqlCommand("LISTEN pf_probe", conn))
        {
            await listen.ExecuteNonQueryAsync(Ct);
        }

        var sessions = await EverySessionAsync(ds);
        Assert.Equal(reset ? 0 : 1, sessions.Count(s => s.Channels.Contains("pf_probe")));
    }

    [Fact]
    public async Task ThePool_RollsBackATransactionLeftOpen_WithoutTheReset()
    {
        // Npgsql rolls back a returned connection's open transaction whether it resets the session or not.
        await using var platform = Platform(ConnectionString);
        var ds = platform.GetRequiredService<NpgsqlDataSource>();
        var stream = NewStream();
        await using (var conn = await ds.OpenConnectionAsync(Ct))
        {
            var tx = await conn.BeginTransactionAsync(Ct);
            await new NpgsqlEventStore(ds).AppendAsync(NewStream(), 0, [Evt(1)], Ct); // another borrower meanwhile
            await using var insert = new NpgsqlCommand(
                "INSERT INTO pf_checkpoints (name, transaction_id, global_position) VALUES ($1, '1', 1)", conn, tx);
            insert.Parameters.Add(new() { Value = stream });
            await insert.ExecuteNonQueryAsync(Ct);
            // The transaction is neither committed nor disposed: only the connection goes back.
        }

        Assert.All(await EverySessionAsync(ds), s => Assert.False(s.InWritingTransaction));
        Assert.Equal(GlobalCheckpoint.Start, await new NpgsqlEventStore(ds).LoadCheckpointAsync(stream, Ct));
    }

    [Fact]
    public async Task LogListener_ThatFailedAndStopped_LeavesNoListenOnThePool()
    {
        await using var platform = Platform(ConnectionString);
        var ds = platform.GetRequiredService<NpgsqlDataSource>();
        var store = platform.GetRequiredService<IEventStore>();
        var listener = new LogNotificationListener(platform.GetRequiredService<UnpooledConnections>(), NullLogger<LogNotificationListener>.Instance);
        listener.EnsureStarted();
        var first = await PooledSessions.IdleAfterAsync(ConnectionString, "LISTEN pf_log", null, Ct);

        // Its backend killed: the listener notices, waits and listens again on a new session.
        await PooledSessions.TerminateAsync(ConnectionString, first, Ct);
        await PooledSessions.IdleAfterAsync(ConnectionString, "LISTEN pf_log", first, Ct);
        await Eventually.TrueAsync(() => Task.FromResult(listener.IsListening), TimeSpan.FromSeconds(30), "listening again");
        // The pool is in use meanwhile, as in the silo.
        await store.AppendAsync(NewStream(), 0, [Evt(1), Evt(2)], Ct);
        await listener.DisposeAsync();

        var sessions = await EverySessionAsync(ds);
        Assert.All(sessions, s => Assert.Empty(s.Channels));
        await Eventually.TrueAsync(async () => await ListenersAsync() == 0, TimeSpan.FromSeconds(30), "no session of the database listens on pf_log");
    }

    [Fact]
    public async Task Migrator_ThatRanAndFailedMidway_HoldsNoAdvisoryLockOnThePool()
    {
        var cs = await Pg.CreateEmptyDatabaseAsync("sess");
        // lock_timeout makes migration 003 fail at once on the table this test holds, instead of waiting for it.
        await using var platform = Platform(new NpgsqlConnectionStringBuilder(cs) { Options = "-c lock_timeout=500" }.ConnectionString);
        var ds = platform.GetRequiredService<NpgsqlDataSource>();
        var migrator = platform.GetRequiredService<SchemaMigrator>();
        Assert.Equal(new[] { "001_events", "002_snapshots_checkpoints" }, await migrator.MigrateAsync(2, Ct));
        Assert.All(await EverySessionAsync(ds), s => Assert.Equal(0L, s.AdvisoryLocks));

        await using (var other = NpgsqlDataSource.Create(cs))
        await using (var conn = await other.OpenConnectionAsync(Ct))
        await using (var tx = await conn.BeginTransactionAsync(Ct))
        {
            await using (var hold = new NpgsqlCommand("LOCK TABLE pf_events IN ACCESS SHARE MODE", conn, tx))
            {
                await hold.ExecuteNonQueryAsync(Ct);
            }

            // 003 alters pf_events: it cannot get its lock, fails, and the migrator throws midway.
            var e = await Assert.ThrowsAsync<PostgresException>(() => migrator.MigrateAsync(Ct));
            Assert.Equal(PostgresErrorCodes.LockNotAvailable, e.SqlState);
            Assert.All(await EverySessionAsync(ds), s => Assert.Equal(0L, s.AdvisoryLocks));
            await tx.RollbackAsync(Ct);
        }

        await using (var applied = ds.CreateCommand("SELECT array_agg(id ORDER BY id) FROM pf_schema_migrations"))
        {
            Assert.Equal(new[] { "001_events", "002_snapshots_checkpoints" }, (string[])(await applied.ExecuteScalarAsync(Ct))!);
        }

        // Nothing left behind stops the next run, here or in another process.
        Assert.Contains("003_event_hash_chain", await migrator.MigrateAsync(Ct));
        Assert.All(await EverySessionAsync(ds), s => Assert.Equal(0L, s.AdvisoryLocks));
    }

    [Fact]
    public async Task StreamImport_LeavesNoTemporaryTableOnThePool_OnAnyPath()
    {
        await using var platform = Platform(ConnectionString);
        var ds = platform.GetRequiredService<NpgsqlDataSource>();
        var import = new StreamImport(ds);
        var a = NewStream();
        var b = NewStream();

        // Done (committed), refused (a stream exists: rolled back), failed (an id twice: an exception mid-COPY).
        Assert.True((await import.CreateStreamsAsync([new(1, a, Evt())], Ct)).Done);
        Assert.All(await EverySessionAsync(ds), s => Assert.Equal(0L, s.TemporaryTables));
        Assert.False((await import.CreateStreamsAsync([new(1, b, Evt()), new(2, a, Evt())], Ct)).Done);
        Assert.All(await EverySessionAsync(ds), s => Assert.Equal(0L, s.TemporaryTables));
        await Assert.ThrowsAsync<ArgumentException>(() => import.CreateStreamsAsync([new(1, b, Evt()), new(2, b, Evt())], Ct));
        Assert.All(await EverySessionAsync(ds), s => Assert.Equal(0L, s.TemporaryTables));

        // And the next imports on the same pool stage theirs (a table left behind would refuse the CREATE).
        for (var i = 0; i < PoolSize; i++)
        {
            Assert.True((await import.CreateStreamsAsync([new(1, NewStream(), Evt())], Ct)).Done);
        }
    }

    private static ServiceProvider Platform(string connectionString, params (string Key, string Value)[] settings) =>
        new ServiceCollection()
            .AddLogging()
            .AddSingleton<IConfiguration>(new ConfigurationBuilder()
                .AddInMemoryCollection(settings.Select(s => KeyValuePair.Create(s.Key, (string?)s.Value)))
                .Build())
            .AddPumpFleetEventStore(new NpgsqlConnectionStringBuilder(connectionString) { MaxPoolSize = PoolSize }.ConnectionString)
            .BuildServiceProvider();

    private static Task<List<PooledSession>> EverySessionAsync(NpgsqlDataSource ds) => PooledSessions.EveryAsync(ds, PoolSize, Ct);

    private async Task<long> ListenersAsync()
    {
        await using var conn = new NpgsqlConnection(new NpgsqlConnectionStringBuilder(ConnectionString) { Pooling = false }.ConnectionString);
        await conn.OpenAsync(Ct);
        await using var cmd = new NpgsqlCommand(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND query = 'LISTEN pf_log'", conn);
        return (long)(await cmd.ExecuteScalarAsync(Ct))!;
    }
}
