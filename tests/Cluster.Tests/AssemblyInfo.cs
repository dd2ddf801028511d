using PumpFleet.TestSupport;

[assembly: AssemblyFixture(typeof(PostgresFixture))]

// Each test starts several silos; on a shared 2-core machine running them side by side only makes each slower.
[assembly: CollectionBehavior(DisableTestParallelization = true)]
