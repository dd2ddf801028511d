using System.Globalization;
using System.Net.Sockets;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using PumpFleet.Contracts.Events;
using PumpFleet.Contracts.Grains;
using PumpFleet.Dashboard.Hosting;
using PumpFleet.EventStore;
using PumpFleet.Gateway.Hosting;
using PumpFleet.Grains;
using PumpFleet.Projections;
using PumpFleet.ServiceDefaults;
using PumpFleet.TestSupport;
using PumpFleet.TestSupport.Monitoring;
using PumpFleet.ReadModels;

namespace PumpFleet.Dashboard.Tests;

/// <summary>
/// One pump stalls, end to end on a platform of its own (silo with grains, detectors and projections, the API and
/// /metrics, over its own database): the stall must reach the open-anomalies API and the anomaly gauge, and the
/// whole scrape must pass <c>promtool check metrics</c>, lint included.
/// </summary>
public sealed class StallEndToEndTests(DashboardApp app) : IAsyncLifetime
{
    private static readonly DateTimeOffset T0 = new(2026, 11, 20, 0, 0, 0, TimeSpan.Zero);
    private WebApplication _host = null!;
    private HttpClient _http = null!;

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    public async ValueTask InitializeAsync()
    {
        var cs = await app.Postgres.CreateDatabaseAsync("e2e", typeof(PumpProjection).Assembly);
        var builder = WebApplication.CreateBuilder(new WebApplicationOptions { EnvironmentName = "Development", ApplicationName = typeof(StallEndToEndTests).Assembly.GetName().Name });
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        builder.Configuration.AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["ConnectionStrings:PumpFleet"] = cs,
            ["Dashboard:Auth:Mode"] = "Local",
            ["Projections:PollInterval"] = "00:00:00.100",
            ["Projections:KeepAliveInterval"] = "00:00:01",
            ["Projections:MetricsRefreshInterval"] = "00:00:00.500",
            ["Logging:LogLevel:Default"] = "Warning",
            ["Gateway:Mqtt:Port"] = Ports.Free().ToString(CultureInfo.InvariantCulture),
        });
        builder.AddServiceDefaults();
        builder.Services.AddPumpFleetEventStore(cs);
        // The gateway too, so that the scrape carries every process role's meters (as the all-in-one host does).
        builder.Services.AddPumpFleetGateway(builder.Configuration);
        builder.Services.AddPumpFleetGrains();
        builder.UseOrleans(silo =>
        {
            silo.UseLocalhostClustering(Ports.Free(), Ports.Free(), serviceId: "pumpfleet", clusterId: "pumpfleet-e2e");
            silo.AddPumpFleetProjections();
        });
        builder.AddPumpFleetDashboard();
        _host = builder.Build();
        _host.MapDefaultEndpoints();
        _host.MapPumpFleetDashboard();
        await _host.StartAsync(Ct);
        _http = new HttpClient { BaseAddress = new Uri(_host.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First()) };
    }

    public async ValueTask DisposeAsync()
    {
        _http.Dispose();
        await _host.StopAsync();
        await _host.DisposeAsync();
    }

    [Fact]
    public async Task MotorStall_ReachesOpenAnomaliesApi_AndAnomalyGauge_AndWholeScrapePassesPromtoolLint()
    {
        const string serial = "E2E-STALL-1";
        var ingest = _host.Services.GetRequiredService<IGrainFactory>().GetGrain<IPumpIngestGrain>(serial);
        await ingest.PairAsync("E2E-HUB", "test");
        var rx = new PrescriptionSet
        {
            Seq = 1, At = T0, Drug = "baclofen", Concentration = new Concentration { Value = 2000, Unit = "mcg/mL" }, Mode = "continuous", RateMlPerDay = 0.5,
        };
        var healthy = await ingest.IngestAsync(new IngestBatch
        {
            HubId = "E2E-HUB", ReceivedAt = T0.AddHours(1),
            Device = new DeviceInfo { Model = "SM2-20", Firmware = "4.2.1", Lot = "E2E", ReservoirCapacityMl = 20 },
            Events =
            [
                rx,
                new RefillPerformed { Seq = 2, At = T0, ExpectedResidualMl = 0, AspiratedResidualMl = 0, AddedMl = 18, Drug = "baclofen", Concentration = rx.Concentration },
                new DoseDelivered { Seq = 3, At = T0.AddHours(1), From = T0, VolumeMl = 0.0208, Kind = "basal" },
            ],
        });
        Assert.Empty(healthy.Rejections);

        // The motor stops: no delivery for an hour while 0.5 mL/day is programmed, the motor reports stalled, the pump alarms.
        var stalled = await ingest.IngestAsync(new IngestBatch
        {
            HubId = "E2E-HUB", ReceivedAt = T0.AddHours(2),
            Events =
            [
                new DoseDelivered { Seq = 4, At = T0.AddHours(2), From = T0.AddHours(1), VolumeMl = 0, Kind = "basal" },
                new StatusReported { Seq = 5, At = T0.AddHours(2), Motor = "stalled", BatteryPct = 80 },
                new AlarmRaised { Seq = 6, At = T0.AddHours(2), Code = "MOTOR_STALL", Severity = "critical" },
            ],
        });
        Assert.Equal(6, stalled.CommittedSeq);

        JsonArray open = [];
        await Eventually.TrueAsync(async () =>
        {
            open = JsonNode.Parse(await _http.GetStringAsync("/api/anomalies?status=open&kind=flow-stall", Ct))!.AsArray();
            return open.Any(a => a!["serial"]!.GetValue<string>() == serial);
        }, TimeSpan.FromSeconds(30), "the flow-stall anomaly in GET /api/anomalies?status=open");
        var anomaly = open.Single(a => a!["serial"]!.GetValue<string>() == serial)!;
        Assert.Equal("open", anomaly["status"]!.GetValue<string>());
        Assert.False(string.IsNullOrEmpty(anomaly["severity"]!.GetValue<string>()));
        Assert.NotNull(anomaly["evidence"]);

        var scrape = "";
        await Eventually.TrueAsync(async () =>
        {
            scrape = await _http.GetStringAsync("/metrics", Ct);
            return scrape.Split('\n').Any(l => l.StartsWith("pumpfleet_anomalies_open{", StringComparison.Ordinal)
                && l.Contains("kind=\"flow-stall\"", StringComparison.Ordinal)
                && double.Parse(l[(l.LastIndexOf(' ') + 1)..], CultureInfo.InvariantCulture) >= 1);
        }, TimeSpan.FromSeconds(30), "pumpfleet_anomalies_open{kind=\"flow-stall\"} ≥ 1 on /metrics");

        // The whole scrape passes promtool's lint (exit 1 is a format error, 3 lint findings): the platform's own
        // families and the libraries' (Orleans, Npgsql, ASP.NET Core, the .NET runtime) through the views in
        // src/ServiceDefaults (MetricViews, OrleansUnitBridge).
        Assert.Contains("pumpfleet_events_stored_total", scrape, StringComparison.Ordinal);
        Assert.Contains("pumpfleet_gateway_inflight_messages", scrape, StringComparison.Ordinal);
        Assert.Contains("\norleans_", scrape, StringComparison.Ordinal);
        Assert.Contains("\ndb_client_", scrape, StringComparison.Ordinal);
        Assert.Contains("\ndotnet_", scrape, StringComparison.Ordinal);
        var (code, output) = await Promtool.CheckMetricsAsync(scrape, Ct);
        Assert.True(code == 0, $"promtool check metrics exited {code} on the whole scrape:\n{output}");
    }
}
