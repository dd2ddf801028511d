using PumpFleet.TestSupport;

[assembly: AssemblyFixture(typeof(PostgresFixture))]
