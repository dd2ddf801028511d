using PumpFleet.EventStore.Local;
using PumpFleet.Failover;

namespace PumpFleet.Cluster.Tests;

/// <summary>
/// The short form of scripts/failover-mqtt.sh: three silo processes and a gateway process over a private PostgreSQL
/// of its own (the test restarts it), hubs over MQTT with the resend rule, and in one run a silo SIGKILL, a
/// PostgreSQL restart and a gateway SIGKILL. Every step waits for its condition; none waits for a time.
/// </summary>
public sealed class MqttFailoverTests
{
    [Fact]
    public async Task SiloKill_PostgresRestart_GatewayKill_ThroughMqtt_EveryEventStoredOnce_NothingAcknowledgedMissing()
    {
        await using var server = await PrivatePostgres.StartAsync(durable: true, ct: TestContext.Current.CancellationToken);
        var cs = await MqttFailoverScenario.CreateDatabaseAsync(server, "mqtt_failover");

        var reports = await MqttFailoverScenario.RunAsync(new MqttFailoverSettings
        {
            SiloDll = FailoverScenario.LocateSiloDll(),
            GatewayDll = MqttFailoverScenario.LocateGatewayDll(),
            Postgres = server,
            ConnectionString = cs,
            Hubs = 4,
            PumpsPerHub = 2,
            AcksBetweenFaults = 3,
            Progress = line => TestContext.Current.SendDiagnosticMessage(line),
        }, TestContext.Current.CancellationToken);

        Assert.Equal([MqttFault.SiloKill, MqttFault.PostgresRestart, MqttFault.GatewayKill], reports.Select(r => r.Fault));
        foreach (var r in reports)
        {
            TestContext.Current.SendDiagnosticMessage(r.ToString());
            Assert.True(r.EventsSent > 0, r.ToString());
            Assert.Equal(r.EventsSent, r.DistinctStored);
            Assert.Equal(r.DistinctStored, r.RowsStored);
            Assert.Equal(r.EventsSent, r.EventsAcked);
            Assert.Equal(0, r.AckedButMissing);
            Assert.Equal(4, r.Recovery.Count);
        }

        // The faults were felt by the hubs: publishes failed during the PostgreSQL outage (the scenario waits for one),
        // and every hub lost its connection to the killed gateway and made a new one (a hub idle at the kill reconnects
        // without a failed publish, so failed publishes alone are not a sign of it).
        Assert.True(reports[1].FailedPublishes > 0, reports[1].ToString());
        Assert.True(reports[2].Reconnects >= 4, reports[2].ToString());
    }
}
