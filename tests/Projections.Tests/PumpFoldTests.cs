using Microsoft.Extensions.DependencyInjection;
using PumpFleet.ReadModels;
using PumpFleet.TestSupport;

namespace PumpFleet.Projections.Tests;

/// <summary>
/// The pumps projection keeps its folded state in <c>pf_pump_fold</c> (migration 027), apart from the status row the
/// API reads: a worker that does not hold a pump in memory continues from there, and the result is the same as one
/// worker that held everything in memory.
/// </summary>
public sealed class PumpFoldTests(PostgresFixture pg) : ProjectionTestBase(pg)
{
    [Fact]
    public async Task AFreshWorkerPerWave_ContinuesFromTheStoredFold_AndEndsWhereOneWorkerEnds()
    {
        var seed = Seed(6);
        // Each wave is applied by a new runner (a new silo, an empty cache): every page loads its pumps' state from
        // pf_pump_fold and folds the events after state_version from the log.
        await seed.AppendInWavesAsync(Store, 12, () => CatchUpAllAsync(Build(ConnectionString).GetRequiredService<ProjectionRunner>()), Ct);
        var fresh = await DumpAsync(ConnectionString);

        // The same log from zero by one runner that keeps every pump in memory.
        var rebuilder = Services.GetRequiredService<ProjectionRebuilder>();
        await rebuilder.RebuildAsync(PumpProjection.ProjectionName, Ct);
        Assert.Equal(0L, await ScalarAsync<long>(ConnectionString, "SELECT count(*) FROM pf_pump_fold"));
        await CatchUpAllAsync(Runner);
        Assert.Equal(fresh, await DumpAsync(ConnectionString));

        // One stored state per pump, at most StateEvery events behind the row; the status row carries no state.
        Assert.Equal(6L, await ScalarAsync<long>(ConnectionString, "SELECT count(*) FROM pf_pump_fold"));
        Assert.Equal(0L, await ScalarAsync<long>(ConnectionString,
            $"SELECT count(*) FROM pf_pump_status s JOIN pf_pump_fold f USING (serial) WHERE f.state_version > s.version OR s.version - f.state_version >= {PumpProjection.StateEvery}"));
        Assert.Equal(0L, await ScalarAsync<long>(ConnectionString,
            "SELECT count(*) FROM information_schema.columns WHERE table_name = 'pf_pump_status' AND column_name IN ('state', 'state_version')"));
    }
}
