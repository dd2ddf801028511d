using PumpFleet.Dashboard.Tests;

[assembly: AssemblyFixture(typeof(DashboardApp))]
[assembly: AssemblyFixture(typeof(BrowserFixture))]
// One shared app and database: a rebuild test empties read models that the other tests read.
[assembly: CollectionBehavior(DisableTestParallelization = true)]
