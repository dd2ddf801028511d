using PumpFleet.TestSupport;

// A process of its own: meters and activity sources are process-wide, so a second platform host in the same process
// (as Dashboard.Tests has) would add its gauges to this one's scrape.
[assembly: AssemblyFixture(typeof(PostgresFixture))]
[assembly: CollectionBehavior(DisableTestParallelization = true)]
