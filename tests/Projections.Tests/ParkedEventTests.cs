using Microsoft.Extensions.DependencyInjection;
using Npgsql;
using PumpFleet.Contracts.Events;
using PumpFleet.Contracts.Json;
using PumpFleet.EventStore;
using PumpFleet.TestSupport;

namespace PumpFleet.Projections.Tests;

/// <summary>A projection that throws on one event: retried, then parked, the partition goes on; a retry after the fix applies it once.</summary>
public sealed class ParkedEventTests(PostgresFixture pg) : ProjectionTestBase(pg)
{
    [Fact]
    public async Task PoisonEvent_IsParked_FollowingEventsApplied_RetryAfterFixAppliesItOnce()
    {
        await ExecAsync(ConnectionString, "CREATE TABLE test_applied (event_id uuid PRIMARY KEY, stream_id text NOT NULL, version bigint NOT NULL, times int NOT NULL)");
        var poison = new CountingProjection("poison", "test_applied");
        var services = Build(ConnectionString, pageSize: 7, configure: s =>
        {
            s.AddSingleton<IProjection>(poison);
            s.Configure<ProjectionOptions>(o =>
            {
                o.MaxAttempts = 3;
                o.RetryBackoff = TimeSpan.Zero;
            });
        });
        var store = services.GetRequiredService<IEventStore>();
        var runner = services.GetRequiredService<ProjectionRunner>();
        var parked = services.GetRequiredService<ParkedEventStore>();

        // Five pumps with six events each; the poison is version 3 of the second pump, so three of its events follow it.
        var ids = new Dictionary<(string, long), Guid>();
        for (var p = 0; p < 5; p++)
        {
            var serial = $"PK{p:D3}";
            var rows = Enumerable.Range(1, 6).Select(v => Event(v)).ToList();
            await store.AppendAsync(serial, 0, rows, Ct);
            for (var v = 1; v <= 6; v++)
            {
                ids[(serial, v)] = rows[v - 1].EventId;
            }
        }

        poison.Poisoned.Add(ids[("PK001", 3)]);
        await CatchUpAsync(runner);

        // The poison is parked with its reason; every other event is applied exactly once, including PK001 v4..v6.
        var list = await parked.ListAsync(all: false, Ct);
        var row = Assert.Single(list);
        Assert.Equal(("poison", "PK001", 3L, "parked", 3), (row.Projection, row.StreamId, row.Version, row.Status, row.Attempts));
        Assert.Contains("poisoned on purpose", row.Reason, StringComparison.Ordinal);
        Assert.Equal(29L, await ScalarAsync<long>(ConnectionString, "SELECT count(*) FROM test_applied"));
        Assert.Equal(0L, await ScalarAsync<long>(ConnectionString, "SELECT count(*) FROM test_applied WHERE times <> 1"));
        Assert.Equal(3L, await ScalarAsync<long>(ConnectionString, "SELECT count(*) FROM test_applied WHERE stream_id = 'PK001' AND version > 3"));
        Assert.True(poison.Failures >= 3, $"the page was attempted {poison.Failures} times before parking");

        // Fixed: the retry is applied by the owning worker at its next catch-up, once; asking again finds nothing parked.
        poison.Poisoned.Clear();
        Assert.True(await parked.RequestRetryAsync(row.Id, "test", Ct));
        Assert.False(await parked.RequestRetryAsync(row.Id, "test", Ct));
        await CatchUpAsync(runner);
        await CatchUpAsync(runner);
        Assert.Equal(30L, await ScalarAsync<long>(ConnectionString, "SELECT count(*) FROM test_applied"));
        Assert.Equal(0L, await ScalarAsync<long>(ConnectionString, "SELECT count(*) FROM test_applied WHERE times <> 1"));
        Assert.Equal("applied", Assert.Single(await parked.ListAsync(all: true, Ct)).Status);
        Assert.Empty(await parked.ListAsync(all: false, Ct));
    }

    [Fact]
    public async Task RetryThatFailsAgain_StaysParked()
    {
        await ExecAsync(ConnectionString, "CREATE TABLE test_applied (event_id uuid PRIMARY KEY, stream_id text NOT NULL, version bigint NOT NULL, times int NOT NULL)");
        var poison = new CountingProjection("poison", "test_applied");
        var services = Build(ConnectionString, configure: s =>
        {
            s.AddSingleton<IProjection>(poison);
            s.Configure<ProjectionOptions>(o =>
            {
                o.MaxAttempts = 1;
                o.RetryBackoff = TimeSpan.Zero;
            });
        });
        var store = services.GetRequiredService<IEventStore>();
        var runner = services.GetRequiredService<ProjectionRunner>();
        var parked = services.GetRequiredService<ParkedEventStore>();
        var e = Event(1);
        await store.AppendAsync("PK900", 0, [e, Event(2)], Ct);
        poison.Poisoned.Add(e.EventId);
        await CatchUpAsync(runner);
        var row = Assert.Single(await parked.ListAsync(false, Ct));

        Assert.True(await parked.RequestRetryAsync(row.Id, "test", Ct));
        await CatchUpAsync(runner);
        var again = Assert.Single(await parked.ListAsync(false, Ct));
        Assert.Equal(("parked", 2), (again.Status, again.Attempts));
        Assert.Equal(1L, await ScalarAsync<long>(ConnectionString, "SELECT count(*) FROM test_applied"));
    }

    [Fact]
    public void DependencyFaults_AreNeverParked()
    {
        Assert.False(ProjectionRunner.IsProjectionFault(new NpgsqlException("connection refused"), CancellationToken.None));
        Assert.False(ProjectionRunner.IsProjectionFault(new PostgresException("terminating connection due to administrator command", "FATAL", "FATAL", "57P01"), CancellationToken.None));
        Assert.False(ProjectionRunner.IsProjectionFault(new PostgresException("deadlock detected", "ERROR", "ERROR", "40P01"), CancellationToken.None));
        Assert.False(ProjectionRunner.IsProjectionFault(new TimeoutException(), CancellationToken.None));
        Assert.False(ProjectionRunner.IsProjectionFault(new InvalidOperationException(), new CancellationToken(canceled: true)));
        Assert.True(ProjectionRunner.IsProjectionFault(new PostgresException("new row violates check constraint", "ERROR", "ERROR", "23514"), CancellationToken.None));
        Assert.True(ProjectionRunner.IsProjectionFault(new System.Text.Json.JsonException("bad event"), CancellationToken.None));
    }

    private static async Task CatchUpAsync(ProjectionRunner runner) =>
        await Eventually.TrueAsync(async () =>
        {
            await runner.CatchUpAsync("poison", 0, 1, TimeSpan.FromMinutes(1), Ct);
            return await runner.IsCaughtUpAsync("poison", 0, 1, Ct);
        }, TimeSpan.FromSeconds(60), "the poison projection to reach the end of the log", TimeSpan.FromMilliseconds(20));

    private static EventToAppend Event(long seq)
    {
        var at = new DateTimeOffset(2026, 11, 1, 0, 0, 0, TimeSpan.Zero).AddHours(seq);
        var e = new DoseDelivered { Seq = seq, At = at, From = at.AddHours(-1), VolumeMl = 0.02, Kind = "basal" };
        return new EventToAppend(Guid.NewGuid(), EventTypes.NameOf(e), EventJson.Serialize(e), seq, at, at);
    }
}
