using PumpFleet.Failover;
using PumpFleet.Clustering;
using PumpFleet.TestSupport;

namespace PumpFleet.Cluster.Tests;

/// <summary>
/// Three real silo processes (<c>dotnet PumpFleet.Silo.dll</c>, AdoNet clustering) over one database; load from an
/// Orleans client through IPumpIngestGrain with the hub's resend rule; one silo stopped under load.
/// </summary>
public sealed class FailoverTests(PostgresFixture pg)
{
    private static FailoverSettings Settings(string cs, StopMode mode) => new()
    {
        SiloDll = FailoverScenario.LocateSiloDll(),
        ConnectionString = cs,
        Mode = mode,
        Pumps = 12,
        WarmupAcksPerPump = 3,
        AfterRecovery = TimeSpan.FromSeconds(1),
        Progress = line => TestContext.Current.SendDiagnosticMessage(line),
    };

    [Fact]
    public async Task SiloKilled_UnderLoad_EveryEventStoredOnce_AndItsPumpsMoveToSurvivors()
    {
        var cs = await pg.CreateDatabaseAsync("kill", typeof(ClusterHostingExtensions).Assembly);
        var report = await FailoverScenario.RunAsync(Settings(cs, StopMode.Kill), TestContext.Current.CancellationToken);
        TestContext.Current.SendDiagnosticMessage(report.ToString());

        AssertCluster(report);
        Assert.Equal(report.EventsSent, report.DistinctStored);
        Assert.Equal(report.DistinctStored, report.RowsStored);
        Assert.Equal(report.EventsSent, report.EventsAcked);
        Assert.Equal(0, report.AckedButMissing);
        Assert.Equal(0, report.Rejections);
        // Detection is ProbeTimeout x NumMissedProbesLimit (6 s); a loaded test machine gets generous slack.
        Assert.True(report.VictimMax < TimeSpan.FromSeconds(45), report.ToString());
    }

    [Fact]
    public async Task SiloStoppedGracefully_UnderLoad_NothingLost_AndItsPumpsMoveToSurvivors()
    {
        var cs = await pg.CreateDatabaseAsync("term", typeof(ClusterHostingExtensions).Assembly);
        var report = await FailoverScenario.RunAsync(Settings(cs, StopMode.Terminate), TestContext.Current.CancellationToken);
        TestContext.Current.SendDiagnosticMessage(report.ToString());

        AssertCluster(report);
        Assert.Equal(report.EventsSent, report.DistinctStored);
        Assert.Equal(report.DistinctStored, report.RowsStored);
        Assert.Equal(0, report.AckedButMissing);
        Assert.Equal(0, report.Rejections);
        // A graceful leave hands pumps over without waiting for failure detection.
        Assert.True(report.VictimMax < TimeSpan.FromSeconds(15), report.ToString());
    }

    private static void AssertCluster(FailoverReport report)
    {
        Assert.Equal(3, report.ActiveSilosBefore);
        Assert.Equal(3, report.HostsSeenByCluster);
        Assert.True(report.SilosHoldingPumps >= 2, "calls routed to pumps on several silos");
        Assert.True(report.VictimPumps > 0);
        Assert.Equal(report.VictimPumps, report.VictimPumpsActiveElsewhere);
        Assert.Equal(6, report.StoppedSiloStatus);
    }
}
