using Npgsql;
using PumpFleet.EventStore.Audit;
using PumpFleet.TestSupport;

namespace PumpFleet.EventStore.Tests;

/// <summary>The per-process roles of Sql/006_roles.sql: each process can do its job and nothing more.</summary>
public sealed class RoleTests(PostgresFixture pg) : EventStoreTestBase(pg)
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private async Task<T> AsMemberOfAsync<T>(string group, Func<NpgsqlDataSource, Task<T>> action)
    {
        var login = $"t_{Guid.NewGuid():N}"[..20];
        await ExecAsync(DataSource, $"CREATE ROLE {login} LOGIN IN ROLE {group}");
        try
        {
            await using var ds = NpgsqlDataSource.Create(new NpgsqlConnectionStringBuilder(ConnectionString) { Username = login, Pooling = false }.ConnectionString);
            return await action(ds);
        }
        finally
        {
            await ExecAsync(DataSource, $"DROP ROLE {login}");
        }
    }

    private static async Task ExecAsync(NpgsqlDataSource ds, string sql)
    {
        await using var cmd = ds.CreateCommand(sql);
        await cmd.ExecuteNonQueryAsync(Ct);
    }

    private static async Task<string> RefusedAsync(NpgsqlDataSource ds, string sql) =>
        (await Assert.ThrowsAsync<PostgresException>(() => ExecAsync(ds, sql))).SqlState;

    [Fact]
    public async Task TheSiloRole_AppendsAndReads_ButCannotRewriteOrUnprotectTheLog()
    {
        var stream = NewStream();
        await AsMemberOfAsync("pumpfleet_silo", async ds =>
        {
            var store = new NpgsqlEventStore(ds);
            await store.AppendAsync(stream, 0, [Evt(1), Evt(2)], Ct);
            Assert.Equal(2, (await store.ReadStreamBySeqAsync(stream, 0, 10, Ct)).Count);
            Assert.Equal(PostgresErrorCodes.InsufficientPrivilege, await RefusedAsync(ds, "DELETE FROM pf_events"));
            Assert.Equal(PostgresErrorCodes.InsufficientPrivilege, await RefusedAsync(ds, "UPDATE pf_events SET data = '{}'"));
            // Only the owner (the migration user) can switch the append-only trigger off.
            Assert.Equal(PostgresErrorCodes.InsufficientPrivilege, await RefusedAsync(ds, "ALTER TABLE pf_events DISABLE TRIGGER pf_events_append_only"));
            Assert.Equal(PostgresErrorCodes.InsufficientPrivilege, await RefusedAsync(ds, "SELECT * FROM pf_audit"));
            return 0;
        });
    }

    [Fact]
    public async Task TheDashboardRole_ReadsEventsAndAudits_ButCannotAppendOrChangeTheTrail()
    {
        var stream = NewStream();
        await Store.AppendAsync(stream, 0, [Evt(1)], Ct);
        await AsMemberOfAsync("pumpfleet_dashboard", async ds =>
        {
            Assert.Single(await new NpgsqlEventStore(ds).ReadStreamBySeqAsync(stream, 0, 10, Ct));
            var audit = new AuditLog(ds);
            await audit.WriteAsync(new AuditEntry(new AuditActor("user", "ana", "viewer"), "pump.read", stream, 200, null), Ct);
            Assert.Single(await audit.QueryAsync(new AuditQuery(Target: stream), Ct));
            Assert.Equal(PostgresErrorCodes.InsufficientPrivilege, await RefusedAsync(ds,
                "INSERT INTO pf_events (stream_id, version, event_id, event_type, received_at, data) VALUES ('x', 1, gen_random_uuid(), 'x', now(), '{}')"));
            Assert.Equal(PostgresErrorCodes.InsufficientPrivilege, await RefusedAsync(ds, "UPDATE pf_audit SET actor = 'someone-else'"));
            Assert.Equal(PostgresErrorCodes.InsufficientPrivilege, await RefusedAsync(ds, "DELETE FROM pf_audit"));
            return 0;
        });
    }

    [Fact]
    public async Task TheGatewayRole_HasNoAccessToTheEventLog()
    {
        await AsMemberOfAsync("pumpfleet_gateway", async ds =>
        {
            Assert.Equal(PostgresErrorCodes.InsufficientPrivilege, await RefusedAsync(ds, "SELECT * FROM pf_events"));
            Assert.Equal(PostgresErrorCodes.InsufficientPrivilege, await RefusedAsync(ds,
                "INSERT INTO pf_events (stream_id, version, event_id, event_type, received_at, data) VALUES ('x', 1, gen_random_uuid(), 'x', now(), '{}')"));
            return 0;
        });
    }
}
