using Microsoft.Extensions.DependencyInjection;
using PumpFleet.EventStore;
using PumpFleet.ReadModels;
using PumpFleet.TestSupport;

namespace PumpFleet.Projections.Tests;

/// <summary>
/// The pumps projection's pages that start at their runner's own last commit take the folds the process committed
/// itself without reading their rows (issue 14, h14x, <see cref="PumpProjectionOptions.TrustOwnCommits"/>). They must
/// leave exactly the rows of pages that read every row, and a fold remembered from before a break of the chain of own
/// commits (here a rebuild under the same runner, whose memory then holds folds of rows the rebuild deleted) must not be
/// trusted: its pump's earlier events would be skipped as already folded.
/// </summary>
public sealed class PumpTrustedRowsTests(PostgresFixture pg) : ProjectionTestBase(pg)
{
    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    public async Task TrustedPages_LeaveTheSameRows_AsPagesThatReadEveryRow(int workers)
    {
        var seed = Seed();
        var now = Build(ConnectionString, pageSize: 45, partitions: workers, configure: s => s.Configure<PumpProjectionOptions>(o => o.TrustOwnCommits = true));
        var runner = now.GetRequiredService<ProjectionRunner>();
        await seed.AppendInWavesAsync(Store, 6, () => CatchUpAllAsync(runner, workers), Ct);
        await CatchUpAllAsync(runner, workers);

        var other = await Pg.CreateDatabaseAsync("readevery", typeof(PumpProjection).Assembly);
        var reading = Build(other, pageSize: 45, partitions: workers, configure: s => s.Configure<PumpProjectionOptions>(o => o.TrustOwnCommits = false));
        var readingRunner = reading.GetRequiredService<ProjectionRunner>();
        await seed.AppendInWavesAsync(reading.GetRequiredService<IEventStore>(), 6, () => CatchUpAllAsync(readingRunner, workers), Ct);
        await CatchUpAllAsync(readingRunner, workers);

        Assert.True(Pumps(now).TrustedRowsSkipped >= 20, $"trusted rows: {Pumps(now).TrustedRowsSkipped}");
        Assert.Equal(0, Pumps(reading).TrustedRowsSkipped);
        Assert.Equal(await DumpAsync(other), await DumpAsync(ConnectionString));
        Assert.Equal(seed.TotalDeliveredMl(), await ScalarAsync<double>(ConnectionString, "SELECT sum(delivered_ml) FROM pf_daily_flow"), 6);
    }

    [Fact]
    public async Task ARebuild_UnderTheSameRunner_MakesEveryRememberedFoldReadItsRowAgain()
    {
        // 48 pumps over 16 log partitions in waves of a day each: a partition's later pumps first appear after its first
        // page of 20 events, where a fold remembered from before the rebuild (at the pump's last version) would skip every
        // event of the pump if it were trusted.
        var seed = Seed(48);
        await seed.AppendInWavesAsync(Store, 24, () => Task.CompletedTask, Ct);
        var services = Build(ConnectionString, pageSize: 20, configure: s => s.Configure<PumpProjectionOptions>(o => o.TrustOwnCommits = true));
        var runner = services.GetRequiredService<ProjectionRunner>();
        await CatchUpAllAsync(runner);
        var expected = await DumpAsync(ConnectionString);
        var trustedBefore = Pumps(services).TrustedRowsSkipped;
        Assert.True(trustedBefore > 0, "the first catch-up took no trusted page");

        await services.GetRequiredService<ProjectionRebuilder>().RebuildAsync(PumpProjection.ProjectionName, Ct);
        await CatchUpAllAsync(runner);

        Assert.Equal(expected, await DumpAsync(ConnectionString));
        Assert.Equal(seed.TotalDeliveredMl(), await ScalarAsync<double>(ConnectionString, "SELECT sum(delivered_ml) FROM pf_daily_flow"), 6);
        // The catch-up after the rebuild trusted its own new commits again.
        Assert.True(Pumps(services).TrustedRowsSkipped > trustedBefore, "no trusted page after the rebuild");
    }

    private static PumpProjection Pumps(IServiceProvider services) => services.GetServices<IProjection>().OfType<PumpProjection>().Single();
}
