using Npgsql;
using PumpFleet.EventStore.Audit;
using PumpFleet.EventStore.Integrity;
using PumpFleet.TestSupport;

namespace PumpFleet.EventStore.Tests;

/// <summary>
/// The command line's audit (silo <c>verify</c>; <c>projections rebuild</c> is tested with the projections) and the
/// sign-in failures every dashboard replica shares (Sql/008).
/// </summary>
public sealed class OperatorAuditTests(PostgresFixture pg) : EventStoreTestBase(pg)
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public void OperatorIdentity_IsTheClaimedNameOrTheOsUser_AndKeepsTheOsUser()
    {
        var claimed = OperatorIdentity.FromArguments(["verify", "--actor=alice.smith", "--ConnectionStrings:PumpFleet=x"], "app", "silo-0");
        Assert.Equal(new AuditActor("operator", "cli:alice.smith@silo-0", null), claimed.Actor);
        Assert.Equal("app", claimed.Detail()["osUser"]);

        var unclaimed = OperatorIdentity.FromArguments(["verify"], "app", "silo-0");
        Assert.Equal("cli:app@silo-0", unclaimed.Actor.Name);
        Assert.Null(unclaimed.Claimed);

        foreach (var bad in new[] { "--actor=", "--actor=a b", "--actor=x;DROP", "--actor=" + new string('a', 65) })
        {
            var e = Assert.Throws<ArgumentException>(() => OperatorIdentity.FromArguments([bad], "app", "h"));
            Assert.Contains("--actor=<name>", e.Message, StringComparison.Ordinal);
        }
    }

    [Fact]
    public async Task Verify_FromTheCommandLine_IsAuditedBeforeTheReportIsShown_AsTheSiloRole()
    {
        var stream = NewStream();
        await Store.AppendAsync(stream, 0, [Evt(1), Evt(2)], Ct);

        // The silo's pod runs it with the silo's least-privileged connection (kubectl exec).
        var (exit, text) = await AsMemberOfAsync("pumpfleet_silo", async ds =>
        {
            using var output = new StringWriter();
            var code = await VerifyCommandLine.RunAsync(ds, stream, OperatorIdentity.FromArguments(["--actor=alice"], "app", "silo-0"), output, Ct);
            return (code, output.ToString());
        });
        Assert.Equal(0, exit);
        Assert.NotEmpty(text);
        var entry = Assert.Single(await new AuditLog(DataSource).QueryAsync(new(Action: "chain.verify", Target: stream), Ct));
        Assert.Equal(("operator", "cli:alice@silo-0", 0), (entry.ActorKind, entry.Actor, entry.Outcome));
        Assert.Contains("\"osUser\": \"app\"", entry.Detail, StringComparison.Ordinal);
        Assert.Contains("\"events\": \"2\"", entry.Detail, StringComparison.Ordinal);

        // Without the right to write the audit trail, verify shows nothing: an unaudited read is no read.
        var refused = await AsMemberOfAsync("pumpfleet_dashboard", async ds =>
        {
            await ExecAsync(DataSource, "REVOKE INSERT ON pf_audit FROM pumpfleet_dashboard");
            try
            {
                using var output = new StringWriter();
                var e = await Assert.ThrowsAsync<PostgresException>(() => VerifyCommandLine.RunAsync(ds, stream, OperatorIdentity.FromArguments([], "app", "h"), output, Ct));
                return (e.SqlState, output.ToString());
            }
            finally
            {
                await ExecAsync(DataSource, "GRANT INSERT ON pf_audit TO pumpfleet_dashboard");
            }
        });
        Assert.Equal((PostgresErrorCodes.InsufficientPrivilege, ""), refused);
    }

    [Fact]
    public async Task SignInFailures_LockAfterFiveWithinTheWindow_ForEveryReader_AndExpire()
    {
        var store = new SignInFailureStore(DataSource);
        var window = TimeSpan.FromMinutes(15);
        var t0 = new DateTimeOffset(2026, 11, 30, 8, 0, 0, TimeSpan.Zero);
        var user = "u-" + Guid.NewGuid().ToString("N")[..8];

        for (var i = 0; i < 4; i++)
        {
            await store.FailedAsync(user, window, t0.AddMinutes(i), Ct);
        }

        Assert.False(await store.IsLockedOutAsync(user, 5, window, t0.AddMinutes(4), Ct));
        // The fifth failure comes through another replica: a store on its own data source, as the dashboard role.
        await AsMemberOfAsync("pumpfleet_dashboard", async ds =>
        {
            await new SignInFailureStore(ds).FailedAsync(user, window, t0.AddMinutes(5), Ct);
            return 0;
        });
        Assert.True(await store.IsLockedOutAsync(user, 5, window, t0.AddMinutes(6), Ct));
        Assert.True(await store.IsLockedOutAsync(user, 5, window, t0.AddMinutes(19), Ct));
        // A window after the last failure the lock is gone, and a new failure starts counting from one.
        Assert.False(await store.IsLockedOutAsync(user, 5, window, t0.AddMinutes(20), Ct));
        await store.FailedAsync(user, window, t0.AddMinutes(21), Ct);
        Assert.Equal(1, await ScalarAsync<int>("SELECT failures FROM pf_sign_in_failures WHERE user_name = $1", user));

        // Another name's failure prunes rows past the window, so probing names does not grow the table.
        var other = user + "-x";
        await store.FailedAsync(other, window, t0.AddMinutes(40), Ct);
        Assert.Equal(0, await ScalarAsync<long>("SELECT count(*) FROM pf_sign_in_failures WHERE user_name = $1", user));

        await store.SucceededAsync(other, Ct);
        Assert.Equal(0, await ScalarAsync<long>("SELECT count(*) FROM pf_sign_in_failures WHERE user_name = $1", other));
    }

    private async Task<T> ScalarAsync<T>(string sql, string arg)
    {
        await using var cmd = DataSource.CreateCommand(sql);
        cmd.Parameters.Add(new() { Value = arg });
        return (T)(await cmd.ExecuteScalarAsync(Ct))!;
    }

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
}
