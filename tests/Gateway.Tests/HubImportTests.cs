using Npgsql;
using PumpFleet.Gateway.Hosting;
using PumpFleet.Gateway.Hubs;
using PumpFleet.TestSupport;

namespace PumpFleet.Gateway.Tests;

/// <summary>Bulk provisioning of hubs (HubImport) against real PostgreSQL: all or none, errors by line.</summary>
public sealed class HubImportTests(PostgresFixture pg) : IAsyncLifetime
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    // Few iterations: the test checks what is stored, not the hash's strength.
    private static readonly HubAuthOptions Options = new() { Pbkdf2Iterations = 1000, BrokerHashIterations = 10 };

    private readonly string _run = Guid.NewGuid().ToString("N")[..8];
    private NpgsqlDataSource _ds = null!;

    public async ValueTask InitializeAsync() =>
        _ds = NpgsqlDataSource.Create(await pg.CreateDatabaseAsync("gwimport", typeof(GatewayServiceCollectionExtensions).Assembly));

    public async ValueTask DisposeAsync() => await _ds.DisposeAsync();

    private string Hub(int i) => $"CL{_run}-{i:D3}";

    private async Task<long> HubsAsync()
    {
        await using var cmd = _ds.CreateCommand("SELECT count(*) FROM pf_gateway_hubs WHERE hub_id LIKE $1");
        cmd.Parameters.Add(new() { Value = $"CL{_run}-%" });
        return (long)(await cmd.ExecuteScalarAsync(Ct))!;
    }

    [Fact]
    public async Task Import_ProvisionsEveryHub_WithTheGivenOrAGeneratedSecret()
    {
        var given = "a-secret-of-20-chars";
        var csv = $"hub_id,secret\n{Hub(1)},{given}\n{Hub(2)},\n\n{Hub(3)}\n";

        var outcome = await new HubImport(_ds, Options).ImportAsync(new StringReader(csv), "cli:tester@host", Ct);

        Assert.True(outcome.Done, string.Join("; ", outcome.Errors));
        Assert.Equal([(Hub(1), false), (Hub(2), true), (Hub(3), true)], outcome.Provisioned.Select(p => (p.HubId, p.Generated)));
        Assert.Equal(given, outcome.Provisioned[0].Secret);
        var store = new HubStore(_ds);
        foreach (var (hubId, secret, _) in outcome.Provisioned)
        {
            var row = await store.FindAsync(hubId, Ct);
            Assert.NotNull(row);
            Assert.True(SecretHasher.Verify(secret, row.SecretHash), hubId);
            Assert.False(SecretHasher.Verify(secret + "x", row.SecretHash));
        }

        // Two generated secrets, different from each other (256 random bits each).
        Assert.Equal(2, outcome.Provisioned.Where(p => p.Generated).Select(p => p.Secret).Distinct(StringComparer.Ordinal).Count());
    }

    [Fact]
    public async Task Import_WithBadLines_NamesEachLine_AndProvisionsNothing()
    {
        var csv = $"hub_id,secret\n{Hub(1)},a-secret-of-20-chars\nbad hub,a-secret-of-20-chars\n{Hub(2)},short\n{Hub(1)},\n{Hub(3)},a,b\n";

        var outcome = await new HubImport(_ds, Options).ImportAsync(new StringReader(csv), "cli:tester@host", Ct);

        Assert.Equal([3, 4, 5, 6], outcome.Errors.Select(e => e.Line));
        Assert.Contains("hub id 'bad hub' is not a valid id", outcome.Errors[0].Message, StringComparison.Ordinal);
        Assert.Contains("shorter than 16 characters", outcome.Errors[1].Message, StringComparison.Ordinal);
        Assert.DoesNotContain("short", outcome.Errors[1].Message.Replace("shorter", "", StringComparison.Ordinal), StringComparison.Ordinal);
        Assert.Contains("listed twice (first on line 2)", outcome.Errors[2].Message, StringComparison.Ordinal);
        Assert.Contains("expected at most 2 fields", outcome.Errors[3].Message, StringComparison.Ordinal);
        Assert.Equal(0, await HubsAsync());
    }

    [Fact]
    public async Task Import_OfAKnownOrRevokedHub_IsRefusedAsAWhole()
    {
        var store = new HubStore(_ds);
        Assert.True(await store.TryCreateAsync(Hub(2), HubCredential.From("a-secret-of-20-chars", Options), "test", Ct));
        Assert.True(await store.TryCreateAsync(Hub(4), HubCredential.From("a-secret-of-20-chars", Options), "test", Ct));
        Assert.True(await store.RevokeAsync(Hub(4), "test", Ct));

        var outcome = await new HubImport(_ds, Options).ImportAsync(new StringReader($"hub_id\n{Hub(1)}\n{Hub(2)}\n{Hub(3)}\n{Hub(4)}\n"), "cli:tester@host", Ct);

        Assert.Equal([3, 5], outcome.Errors.Select(e => e.Line));
        Assert.Contains("already exists; use 'hubs rotate'", outcome.Errors[0].Message, StringComparison.Ordinal);
        Assert.Contains("is revoked", outcome.Errors[1].Message, StringComparison.Ordinal);
        Assert.Equal(2, await HubsAsync());
        Assert.Null(await store.FindAsync(Hub(1), Ct));
    }
}
