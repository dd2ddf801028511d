using Npgsql;
using PumpFleet.Contracts.Grains;
using PumpFleet.EventStore.Integrity;
using PumpFleet.EventStore.Registration;
using PumpFleet.Grains.Pumps;
using static PumpFleet.Grains.Tests.Ev;

namespace PumpFleet.Grains.Tests;

/// <summary>Bulk registration (PumpImport over StreamImport) against real PostgreSQL, read back by real grains.</summary>
public sealed class PumpImportTests(PumpClusterFixture fx) : IClassFixture<PumpClusterFixture>
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private readonly string _run = Guid.NewGuid().ToString("N")[..8];

    private string Serial(int i) => $"IMP{_run}-{i:D4}";

    private NpgsqlDataSource DataSource { get; } = NpgsqlDataSource.Create(fx.Cluster.ConnectionString);

    private PumpImport Import() => new(new StreamImport(DataSource), TimeProvider.System);

    // The hubs a test's registry knows (the gateway's pf_gateway_hubs in the silo's command).
    private static Func<IReadOnlyCollection<string>, CancellationToken, Task<IReadOnlySet<string>>> Hubs(params string[] active) =>
        (ids, _) => Task.FromResult<IReadOnlySet<string>>(ids.Where(active.Contains).ToHashSet(StringComparer.Ordinal));

    private async Task<long> StreamsAsync()
    {
        await using var cmd = DataSource.CreateCommand("SELECT count(DISTINCT stream_id) FROM pf_events WHERE stream_id LIKE $1");
        cmd.Parameters.Add(new() { Value = $"IMP{_run}-%" });
        return (long)(await cmd.ExecuteScalarAsync(Ct))!;
    }

    [Fact]
    public async Task Import_RegistersEveryPump_WithItsHub_AndTheGrainsAcceptOnlyThatHub()
    {
        var csv = $"serial,hub_id\n{Serial(1)},CLINIC-A\n\n {Serial(2)} , CLINIC-B \n{Serial(3)},CLINIC-A\n";

        var outcome = await Import().ImportAsync(new StringReader(csv), "cli:tester@host", Hubs("CLINIC-A", "CLINIC-B"), Ct);

        Assert.True(outcome.Done, string.Join("; ", outcome.Errors));
        Assert.Equal(3, outcome.Registered);
        Assert.Equal(3, await StreamsAsync());
        var view = await fx.Cluster.Grains.GetGrain<IPumpQueryGrain>(Serial(2)).GetStateAsync();
        Assert.Equal("CLINIC-B", view.HubId);
        // The pairing is the grain's own: its hub's batch is stored, another hub's is refused as not paired.
        var own = await fx.Cluster.Grains.GetGrain<IPumpIngestGrain>(Serial(1)).IngestAsync(new IngestBatch
        {
            HubId = "CLINIC-A", ReceivedAt = T0.AddDays(1), Device = Device20, Events = [Continuous(1, T0, 0.5), Dose(2, T0, T0.AddHours(1), 0.02)],
        });
        Assert.Equal((2L, 2), (own.CommittedSeq, own.Stored));
        var other = await fx.Cluster.Grains.GetGrain<IPumpIngestGrain>(Serial(3)).IngestAsync(new IngestBatch
        {
            HubId = "CLINIC-B", ReceivedAt = T0.AddDays(1), Device = Device20, Events = [Continuous(1, T0, 0.5)],
        });
        Assert.Equal(0, other.Stored);
        Assert.Contains(other.Rejections, r => r.Code == RejectionCodes.NotPaired);
        // The imported first events chain like any append (the store computed their hashes in the INSERT).
        foreach (var i in new[] { 1, 2, 3 })
        {
            Assert.True((await new ChainVerifier(DataSource).VerifyAsync(Serial(i), Ct)).Intact, Serial(i));
        }
    }

    [Fact]
    public async Task Import_WithBadLines_NamesEachLine_AndRegistersNothing()
    {
        var csv = $"serial,hub_id\n{Serial(1)},CLINIC-A\nbad serial,CLINIC-A\n{Serial(2)}\n{Serial(1)},CLINIC-A\n{Serial(3)},CLINIC A\n";

        var outcome = await Import().ImportAsync(new StringReader(csv), "cli:tester@host", Hubs("CLINIC-A"), Ct);

        Assert.False(outcome.Done);
        Assert.Equal([3, 4, 5, 6], outcome.Errors.Select(e => e.Line));
        Assert.Contains("serial 'bad serial' is not a valid id", outcome.Errors[0].Message, StringComparison.Ordinal);
        Assert.Contains("expected 2 fields", outcome.Errors[1].Message, StringComparison.Ordinal);
        Assert.Contains("listed twice (first on line 2)", outcome.Errors[2].Message, StringComparison.Ordinal);
        Assert.Contains("hub id 'CLINIC A'", outcome.Errors[3].Message, StringComparison.Ordinal);
        Assert.Equal(0, await StreamsAsync());
    }

    [Fact]
    public async Task Import_WithAnUnprovisionedHub_OrAnAlreadyKnownPump_RegistersNothing()
    {
        var unknownHub = await Import().ImportAsync(new StringReader($"serial,hub_id\n{Serial(1)},CLINIC-A\n{Serial(2)},CLINIC-GONE\n"),
            "cli:tester@host", Hubs("CLINIC-A"), Ct);
        Assert.Equal([3], unknownHub.Errors.Select(e => e.Line));
        Assert.Contains("hub CLINIC-GONE is not provisioned", unknownHub.Errors[0].Message, StringComparison.Ordinal);
        Assert.Equal(0, await StreamsAsync());

        // A pump paired the ordinary way already has a stream: the file that lists it is refused as a whole.
        await fx.Cluster.Grains.GetGrain<IPumpIngestGrain>(Serial(3)).PairAsync("CLINIC-A", "test");
        var known = await Import().ImportAsync(new StringReader($"serial,hub_id\n{Serial(1)},CLINIC-A\n{Serial(2)},CLINIC-A\n{Serial(3)},CLINIC-A\n"),
            "cli:tester@host", Hubs("CLINIC-A"), Ct);
        Assert.Equal([4], known.Errors.Select(e => e.Line));
        Assert.Contains($"pump {Serial(3)} is already registered", known.Errors[0].Message, StringComparison.Ordinal);
        Assert.Equal(1, await StreamsAsync());

        // The same file imported twice: the second run refuses every line, nothing is doubled.
        var csv = $"serial,hub_id\n{Serial(1)},CLINIC-A\n{Serial(2)},CLINIC-A\n";
        Assert.True((await Import().ImportAsync(new StringReader(csv), "cli:tester@host", Hubs("CLINIC-A"), Ct)).Done);
        var again = await Import().ImportAsync(new StringReader(csv), "cli:tester@host", Hubs("CLINIC-A"), Ct);
        Assert.Equal([2, 3], again.Errors.Select(e => e.Line));
        Assert.Equal(3, await StreamsAsync());
    }

    [Theory]
    [InlineData("", "the file is empty")]
    [InlineData("hub_id,serial\nA,B\n", "the first line must be the header 'serial,hub_id'")]
    public async Task Import_WithoutTheHeader_IsRefusedAtLineOne(string csv, string message)
    {
        var outcome = await Import().ImportAsync(new StringReader(csv), "cli:tester@host", Hubs("B"), Ct);

        var e = Assert.Single(outcome.Errors);
        Assert.Equal(1, e.Line);
        Assert.Contains(message, e.Message, StringComparison.Ordinal);
    }
}
