using System.Net;
using System.Net.Sockets;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Npgsql;
using Orleans.Dashboard;
using PumpFleet.Contracts.Grains;
using PumpFleet.Dashboard.Hosting;
using PumpFleet.EventStore;
using PumpFleet.Grains;
using PumpFleet.Gateway.Hosting;
using PumpFleet.Projections;
using PumpFleet.Projections.Tests.Seed;
using PumpFleet.ServiceDefaults;
using PumpFleet.TestSupport;
using PumpFleet.ReadModels;
using PumpFleet.Streaming;

namespace PumpFleet.Dashboard.Tests;

/// <summary>
/// The dashboard as the all-in-one host runs it: a real Kestrel on 127.0.0.1 (random port) with a co-hosted Orleans
/// silo, the real PumpGrain and projection grains, on a private PostgreSQL. The fleet is seeded through
/// IPumpIngestGrain (pair, then batches with the device object first), except the pumps with anomalies, whose
/// histories (with the platform's anomaly events) are stored before their grain ever activates.
/// </summary>
public sealed class DashboardApp : IAsyncLifetime
{
    public const int Pumps = 20;

    private readonly PostgresFixture _pg = new();

    /// <summary>The PostgreSQL server of the test run, for tests that need a database of their own.</summary>
    public PostgresFixture Postgres => _pg;

    public WebApplication App { get; private set; } = null!;
    public Uri BaseAddress { get; private set; } = null!;
    public string ConnectionString { get; private set; } = "";
    public FleetSeed Seed { get; } = new(Pumps, hours: 72);
    public int GatewayPort { get; private set; }
    public HttpClient Http { get; private set; } = null!;

    public async ValueTask InitializeAsync()
    {
        await _pg.InitializeAsync();
        ConnectionString = await _pg.CreateDatabaseAsync("dash", typeof(PumpProjection).Assembly, typeof(PumpFleet.Gateway.Hosting.HubAdminApi).Assembly);
        var siloPort = Ports.Free();
        GatewayPort = Ports.Free();

        var builder = WebApplication.CreateBuilder(new WebApplicationOptions { EnvironmentName = "Development", ApplicationName = typeof(DashboardApp).Assembly.GetName().Name });
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        builder.Configuration.AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["ConnectionStrings:PumpFleet"] = ConnectionString,
            ["Dashboard:Auth:Mode"] = "Local",
            // These tests check the API over a fixed seed whose anomalies are appended as events; the detectors have
            // their own tests (and StallEndToEndTests runs them through this API on a platform of its own).
            ["PumpFleet:Detection:Enabled"] = "false",
            ["Dashboard:LiveInterval"] = "00:00:00.300",
            ["Projections:PollInterval"] = "00:00:00.100",
            ["Projections:KeepAliveInterval"] = "00:00:01",
            ["Projections:MetricsRefreshInterval"] = "00:00:00.500",
            ["Logging:LogLevel:Default"] = "Warning",
        });
        builder.AddServiceDefaults();
        builder.Services.AddPumpFleetEventStore(ConnectionString);
        builder.Services.AddPumpFleetGrains();
        // As in the silo: the quarantine gauge is the gateway's, asked of its store.
        builder.Services.AddPumpFleetQuarantineGauge();
        builder.UseOrleans(silo =>
        {
            silo.UseLocalhostClustering(siloPort, GatewayPort, serviceId: "pumpfleet", clusterId: "pumpfleet-test");
            silo.AddPumpFleetProjections();
            silo.AddPumpFleetLogStreams(builder.Configuration);
            silo.AddDashboard();
        });
        builder.AddPumpFleetDashboard();
        App = builder.Build();
        App.MapDefaultEndpoints();
        App.MapPumpFleetDashboard();
        await App.StartAsync();
        var address = App.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
        BaseAddress = new Uri(address.Replace("0.0.0.0", "127.0.0.1", StringComparison.Ordinal));
        Http = new HttpClient { BaseAddress = BaseAddress };
        // State changes from a cookie-less, key-less client are browser-like: they need the antiforgery token a page issues.
        await AddAntiforgeryTokenAsync(Http);

        await SeedAsync();
    }

    private async Task SeedAsync()
    {
        var grains = App.Services.GetRequiredService<IGrainFactory>();
        var store = App.Services.GetRequiredService<IEventStore>();
        var received = Seed.Start.AddHours(36);
        for (var i = 0; i < Pumps; i++)
        {
            var serial = Seed.Serials[i];
            if (Seed.Anomalies(i).Count > 0)
            {
                await Seed.AppendAsync(store, i, 0, 72, default);
                continue;
            }

            await grains.GetGrain<IPumpIngestGrain>(serial).PairAsync(FleetSeed.HubOf(serial), "test");
            var ingest = grains.GetGrain<IPumpIngestGrain>(serial);
            // The backlog of a hub that was offline: two batches, the first with the device object.
            var first = await ingest.IngestAsync(Seed.Batch(i, Seed.DeviceEvents(i, 0, 36), received, withDevice: true));
            Assert.Empty(first.Rejections);
            var second = await ingest.IngestAsync(Seed.Batch(i, Seed.DeviceEvents(i, 36, 72), received.AddHours(36), withDevice: false));
            Assert.Empty(second.Rejections);
        }

        await Eventually.TrueAsync(async () =>
            await CountAsync("SELECT count(*) FROM pf_pump_status WHERE last_seq > 0") == Pumps
            && await CountAsync("SELECT count(*) FROM pf_anomalies") == 4
            && await CountAsync("SELECT count(*) FROM pf_cohort_members") == Pumps,
            TimeSpan.FromSeconds(60), "the projections caught up with the seeded fleet");
    }

    /// <summary>Loads a page (which issues the token in the XSRF-TOKEN cookie) and sends the token on every request of <paramref name="client"/>.</summary>
    public static async Task AddAntiforgeryTokenAsync(HttpClient client, System.Net.CookieContainer? cookies = null)
    {
        using var page = await client.GetAsync("/login");
        page.EnsureSuccessStatusCode();
        var token = TokenFrom(page);
        client.DefaultRequestHeaders.Remove("X-XSRF-TOKEN");
        client.DefaultRequestHeaders.Add("X-XSRF-TOKEN", token);
    }

    /// <summary>The XSRF-TOKEN cookie a page response set.</summary>
    public static string TokenFrom(HttpResponseMessage page)
    {
        var cookie = page.Headers.GetValues("Set-Cookie").First(c => c.StartsWith("XSRF-TOKEN=", StringComparison.Ordinal));
        return Uri.UnescapeDataString(cookie["XSRF-TOKEN=".Length..cookie.IndexOf(';', StringComparison.Ordinal)]);
    }

    /// <summary>
    /// The API's list reads are answered from a reading of the read-model version at most
    /// <c>Dashboard:ReadCache:VersionMaxAge</c> old (docs/architecture.md, "Shared read cache"). A test that saw a change
    /// in the read model through SQL takes a fresh reading here, as the live channel does before each push; every API
    /// read after it sees the change.
    /// </summary>
    public Task ReadVersionAsync() => App.Services.GetRequiredService<PumpFleet.Dashboard.Caching.ReadModelVersion>().CurrentAsync(TimeSpan.Zero, default);

    public async Task<long> CountAsync(string sql)
    {
        await using var conn = new NpgsqlConnection(ConnectionString);
        await conn.OpenAsync();
        await using var cmd = new NpgsqlCommand(sql, conn);
        return Convert.ToInt64(await cmd.ExecuteScalarAsync(), System.Globalization.CultureInfo.InvariantCulture);
    }


    public async ValueTask DisposeAsync()
    {
        Http?.Dispose();
        if (App is not null)
        {
            await App.StopAsync();
            await App.DisposeAsync();
        }

        await _pg.DisposeAsync();
    }
}
