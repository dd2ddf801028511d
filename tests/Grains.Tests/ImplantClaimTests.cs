using Microsoft.Extensions.DependencyInjection;
using Npgsql;
using PumpFleet.Contracts;
using PumpFleet.Contracts.Events;
using PumpFleet.Contracts.Grains;
using PumpFleet.Contracts.Json;
using PumpFleet.Domain.Therapies;
using PumpFleet.EventStore;

namespace PumpFleet.Grains.Tests;

/// <summary>
/// One serial in one therapy, decided at write time (issue 16): the implant claim (<c>implant-claim:{serial}</c>,
/// version 1 only) against real PostgreSQL on the in-process cluster.
/// </summary>
public sealed class ImplantClaimTests(PumpClusterFixture fx) : IClassFixture<PumpClusterFixture>
{
    private static readonly DateTimeOffset T0 = DateTimeOffset.UtcNow.AddDays(-60);

    private static string NewSerial() => "SN" + Guid.NewGuid().ToString("N")[..10];

    private static string NewTherapy() => $"TH-{Guid.NewGuid():N}"[..16] + "-1";

    private async Task<ITherapyGrain> DecidedAsync(string id)
    {
        var g = fx.Cluster.Grains.GetGrain<ITherapyGrain>(id);
        foreach (var c in new[]
                 {
                     new TherapyCommand { Action = "open", By = "dr.a", At = T0 },
                     new TherapyCommand { Action = "trial", By = "dr.a", At = T0.AddDays(1), TrialKind = "single-dose" },
                     new TherapyCommand { Action = "response", By = "dr.a", At = T0.AddDays(2), PainBefore = 8, PainAfter = 3 },
                     new TherapyCommand { Action = "decision", By = "dr.a", At = T0.AddDays(3), Proceed = true },
                 })
        {
            var r = await g.ExecuteAsync(c);
            Assert.True(r.Error is null, $"{c.Action}: {r.Error} {r.Reason}");
        }

        return g;
    }

    private async Task<long> CountAsync(string sql, string value)
    {
        await using var ds = NpgsqlDataSource.Create(fx.Cluster.ConnectionString);
        await using var cmd = ds.CreateCommand(sql);
        cmd.Parameters.Add(new() { Value = value });
        return (long)(await cmd.ExecuteScalarAsync(TestContext.Current.CancellationToken))!;
    }

    [Fact]
    public async Task TwoTherapiesImplantingOneSerialAtOnce_ExactlyOneWins_AndTheOtherNamesIt()
    {
        // Several rounds, each two fresh therapies racing for a fresh serial.
        for (var round = 0; round < 8; round++)
        {
            var serial = NewSerial();
            var (a, b) = (NewTherapy(), NewTherapy());
            var (ga, gb) = (await DecidedAsync(a), await DecidedAsync(b));
            var implant = new TherapyCommand { Action = "implant", By = "dr.a", At = T0.AddDays(10), Serial = serial };
            var results = await Task.WhenAll(ga.ExecuteAsync(implant), gb.ExecuteAsync(implant));

            var winners = results.Where(r => r.Error is null).ToList();
            Assert.Single(winners);
            var winner = winners[0].Therapy.Id;
            var loser = Assert.Single(results, r => r.Error is not null);
            Assert.Equal(TherapyDecision.Conflict, loser.Error);
            Assert.Equal("serial", loser.Field);
            Assert.Contains($"({winner})", loser.Reason, StringComparison.Ordinal);
            Assert.NotEqual("implanted", loser.Therapy.Phase);

            // Stored: one claim, one implant of the serial, in the winner's stream.
            Assert.Equal(1, await CountAsync("SELECT count(*) FROM pf_events WHERE stream_id = $1", StreamIds.ImplantClaim(serial)));
            Assert.Equal(1, await CountAsync("SELECT count(*) FROM pf_events WHERE event_type = 'therapy.implant' AND data->>'serial' = $1", serial));
            Assert.Equal(winner, await fx.Cluster.Grains.GetGrain<IImplantClaimGrain>(serial).HolderAsync());
        }
    }

    [Fact]
    public async Task AClaimStoredByAnotherWriter_WinsOverThisActivationsStaleView()
    {
        var serial = NewSerial();
        var claims = fx.Cluster.Grains.GetGrain<IImplantClaimGrain>(serial);
        Assert.Null(await claims.HolderAsync());   // activated: no claim yet

        // Another process claims the serial behind this activation's back.
        var store = fx.Cluster.SiloServices.GetRequiredService<IEventStore>();
        var other = new ImplantClaimed { At = T0, Serial = serial, TherapyId = "TH-OTHER-PROCESS-1", By = "dr.b" };
        await store.AppendAsync(StreamIds.ImplantClaim(serial), 0,
            [new EventToAppend(Guid.NewGuid(), EventTypes.NameOf(other), EventJson.Serialize(other), null, null, DateTimeOffset.UtcNow)], TestContext.Current.CancellationToken);

        // The append at version 1 fails for this activation; it re-reads and names the holder.
        Assert.Equal("TH-OTHER-PROCESS-1", await claims.ClaimAsync("TH-MINE-1", "dr.a", T0));
        Assert.Equal(1, await CountAsync("SELECT count(*) FROM pf_events WHERE stream_id = $1", StreamIds.ImplantClaim(serial)));

        // The holder itself may claim again (a retried implant).
        Assert.Null(await claims.ClaimAsync("TH-OTHER-PROCESS-1", "dr.b", T0));
    }
}
