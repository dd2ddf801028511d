using Microsoft.Extensions.DependencyInjection;
using PumpFleet.EventStore.Audit;
using PumpFleet.TestSupport;

namespace PumpFleet.Projections.Tests;

/// <summary><c>projections rebuild</c> from a command line (silo or dashboard host) is a write, and is audited.</summary>
public sealed class ProjectionsCommandLineTests(PostgresFixture pg) : ProjectionTestBase(pg)
{
    [Fact]
    public async Task Rebuild_IsAuditedWithTheOperator_ListAndRefusedCommandsAreNot()
    {
        var audit = Services.GetRequiredService<AuditLog>();
        var name = Services.GetRequiredService<ProjectionRebuilder>().Names.Order(StringComparer.Ordinal).First();
        using var output = new StringWriter();

        Assert.Equal(0, await ProjectionsCommandLine.RunAsync(["projections", "rebuild", name, "--actor=oscar", "--Logging:LogLevel:Default=Warning"], Services, output, Ct));
        var entry = Assert.Single(await audit.QueryAsync(new(Action: "projection.rebuild"), Ct));
        Assert.Equal(("operator", $"cli:oscar@{Environment.MachineName}", name, 0), (entry.ActorKind, entry.Actor, entry.Target, entry.Outcome));
        Assert.Contains($"\"osUser\": \"{Environment.UserName}\"", entry.Detail, StringComparison.Ordinal);

        // Every projection at once: target "*", the OS user when no --actor is given.
        Assert.Equal(0, await ProjectionsCommandLine.RunAsync(["projections", "rebuild"], Services, output, Ct));
        var all = (await audit.QueryAsync(new(Action: "projection.rebuild"), Ct))[0];
        Assert.Equal(("*", $"cli:{Environment.UserName}@{Environment.MachineName}"), (all.Target, all.Actor));

        // A bad actor name or an unknown projection changes nothing, so nothing is recorded.
        Assert.Equal(2, await ProjectionsCommandLine.RunAsync(["projections", "rebuild", name, "--actor=a b"], Services, output, Ct));
        Assert.Equal(2, await ProjectionsCommandLine.RunAsync(["projections", "rebuild", "no-such-projection"], Services, output, Ct));
        Assert.Equal(0, await ProjectionsCommandLine.RunAsync(["projections", "list"], Services, output, Ct));
        Assert.Equal(2, (await audit.QueryAsync(new(Action: "projection.rebuild"), Ct)).Count);
    }

    [Fact]
    public async Task Parked_IsListed_RetryIsAuditedAndMarksTheEvent()
    {
        await ExecAsync(ConnectionString, """
            INSERT INTO pf_projection_parked (projection, log_partition, stream_id, version, event_id, event_type, reason, attempts)
            VALUES ('pumps', 3, 'CLI0001', 7, gen_random_uuid(), 'dose.delivered', 'InvalidOperationException: broken', 5)
            """);
        var id = await ScalarAsync<long>(ConnectionString, "SELECT id FROM pf_projection_parked");
        var audit = Services.GetRequiredService<AuditLog>();
        using var output = new StringWriter();

        Assert.Equal(0, await ProjectionsCommandLine.RunAsync(["projections", "parked"], Services, output, Ct));
        Assert.Contains("CLI0001", output.ToString(), StringComparison.Ordinal);
        Assert.Contains("InvalidOperationException: broken", output.ToString(), StringComparison.Ordinal);
        Assert.Empty(await audit.QueryAsync(new(Action: "projection.parked.retry"), Ct));

        Assert.Equal(0, await ProjectionsCommandLine.RunAsync(["projections", "parked", "retry", id.ToString(System.Globalization.CultureInfo.InvariantCulture), "--actor=oscar"], Services, output, Ct));
        Assert.Equal("retry", await ScalarAsync<string>(ConnectionString, "SELECT status FROM pf_projection_parked"));
        Assert.Equal($"cli:oscar@{Environment.MachineName}", await ScalarAsync<string>(ConnectionString, "SELECT retry_by FROM pf_projection_parked"));
        var entry = Assert.Single(await audit.QueryAsync(new(Action: "projection.parked.retry"), Ct));
        Assert.Equal((id.ToString(System.Globalization.CultureInfo.InvariantCulture), 0), (entry.Target, entry.Outcome));

        // Already asked for (or unknown): nothing to retry, exit code 1.
        Assert.Equal(1, await ProjectionsCommandLine.RunAsync(["projections", "parked", "retry", id.ToString(System.Globalization.CultureInfo.InvariantCulture)], Services, output, Ct));
        Assert.Equal(1, await ProjectionsCommandLine.RunAsync(["projections", "parked", "retry", "987654"], Services, output, Ct));
    }
}
