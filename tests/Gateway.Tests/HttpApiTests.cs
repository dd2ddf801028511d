using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.Configuration;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using MQTTnet;
using PumpFleet.Gateway.Hosting;
using PumpFleet.Gateway.Protocol;
using PumpFleet.Gateway.Quarantine;
using PumpFleet.Gateway.Tests.Infrastructure;
using PumpFleet.TestSupport;
using static PumpFleet.Gateway.Tests.Infrastructure.Batches;

namespace PumpFleet.Gateway.Tests;

/// <summary>
/// The hub administration and quarantine endpoints on Kestrel, without a sign-in of their own: the Dashboard maps them
/// behind its admin sign-in (Dashboard.Tests.HostileHttpTests check that), here only their behaviour is tested.
/// </summary>
public sealed class HttpApiTests(PostgresFixture pg) : IAsyncLifetime
{
    private PumpCluster _cluster = null!;
    private WebApplication _app = null!;
    private HttpClient _http = null!;
    private int _mqttPort;
    private string _cs = "";

    public async ValueTask InitializeAsync()
    {
        var cs = await pg.CreateDatabaseAsync("gwhttp", typeof(GatewayServiceCollectionExtensions).Assembly);
        _cluster = await PumpCluster.StartAsync(cs);
        _mqttPort = Ports.Free();
        var builder = WebApplication.CreateBuilder(new WebApplicationOptions { EnvironmentName = "Production" });
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        builder.Logging.ClearProviders();
        builder.Configuration.AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["ConnectionStrings:PumpFleet"] = cs,
            ["Gateway:Mqtt:Port"] = _mqttPort.ToString(System.Globalization.CultureInfo.InvariantCulture),
            ["Gateway:Mqtt:BindAddress"] = "127.0.0.1",
            ["Gateway:Hubs:Pbkdf2Iterations"] = "10000",
        });
        builder.Services.AddSingleton(_cluster.Grains);
        builder.Services.AddPumpFleetGateway(builder.Configuration);
        _app = builder.Build();
        _app.MapHubAdminApi();
        _app.MapQuarantineApi();
        await _app.StartAsync(TestContext.Current.CancellationToken);
        var address = _app.Services.GetRequiredService<IServer>().Features.GetRequiredFeature<IServerAddressesFeature>().Addresses.First();
        _http = new HttpClient { BaseAddress = new Uri(address) };
        _cs = cs;
    }

    public async ValueTask DisposeAsync()
    {
        _http.Dispose();
        await _app.StopAsync(CancellationToken.None);
        await _app.DisposeAsync();
        await _cluster.DisposeAsync();
    }

    [Fact]
    public async Task ProvisionPairRotateRevoke_WorkOverHttp_AndTheQuarantineIsQueryable()
    {
        var ct = TestContext.Current.CancellationToken;
        var hubId = $"hub-{Guid.NewGuid():N}"[..16];
        var serial = $"P-{Guid.NewGuid():N}"[..16];

        var created = await _http.PostAsJsonAsync("/api/hubs", new { hubId }, ct);
        Assert.Equal(HttpStatusCode.Created, created.StatusCode);
        var secret = (await created.Content.ReadFromJsonAsync<HubSecretResponse>(ct))!.Secret;
        Assert.Equal(HttpStatusCode.Conflict, (await _http.PostAsJsonAsync("/api/hubs", new { hubId }, ct)).StatusCode);
        Assert.Equal(HttpStatusCode.NoContent, (await _http.PostAsync($"/api/hubs/{hubId}/pumps/{serial}", null, ct)).StatusCode);

        await using (var hub = TestHub.Create(hubId))
        {
            Assert.Equal(MqttClientConnectResultCode.Success, (await hub.ConnectAsync(_mqttPort, secret)).ResultCode);
            await hub.PublishAsync(serial, "not json at all");
            await hub.WaitForRejectAsync(serial, RejectCodes.InvalidJson);
        }

        var page = await _http.GetFromJsonAsync<List<QuarantineDto>>($"/api/quarantine?hubId={hubId}&limit=10", ct);
        var item = Assert.Single(page!);
        Assert.Equal(RejectCodes.InvalidJson, item.Code);
        Assert.Equal("not json at all", item.Payload);
        Assert.Equal(serial, item.Serial);
        Assert.Null(item.Seq);
        using var raw = JsonDocument.Parse(await _http.GetStringAsync($"/api/quarantine?serial={serial}", ct));
        Assert.Equal(JsonValueKind.Null, raw.RootElement[0].GetProperty("seq").ValueKind);
        Assert.Equal(HttpStatusCode.BadRequest, (await _http.GetAsync("/api/quarantine?limit=0", ct)).StatusCode);

        var rotated = await _http.PostAsJsonAsync($"/api/hubs/{hubId}/rotate", new { }, ct);
        var newSecret = (await rotated.Content.ReadFromJsonAsync<HubSecretResponse>(ct))!.Secret;
        Assert.NotEqual(secret, newSecret);
        await using (var hub = TestHub.Create(hubId))
        {
            Assert.Equal(MqttClientConnectResultCode.BadUserNameOrPassword, (await hub.ConnectAsync(_mqttPort, secret, subscribe: false)).ResultCode);
        }

        Assert.Equal(HttpStatusCode.NoContent, (await _http.DeleteAsync($"/api/hubs/{hubId}", ct)).StatusCode);
        await using (var hub = TestHub.Create(hubId))
        {
            // The failed login just above backs this hub id off for a moment (ConnectionRateExceeded); after that the
            // revoked hub is refused on its credentials.
            var result = MqttClientConnectResultCode.ConnectionRateExceeded;
            await PumpFleet.TestSupport.Eventually.TrueAsync(async () =>
                (result = (await hub.ConnectAsync(_mqttPort, newSecret, subscribe: false)).ResultCode) != MqttClientConnectResultCode.ConnectionRateExceeded,
                TimeSpan.FromSeconds(30), "the login backoff to pass", TimeSpan.FromMilliseconds(250));
            Assert.Equal(MqttClientConnectResultCode.BadUserNameOrPassword, result);
        }
    }

    [Fact]
    public async Task RevokedHub_StaysRevoked_AndEveryCommandIsAudited()
    {
        var ct = TestContext.Current.CancellationToken;
        var hubId = $"hub-{Guid.NewGuid():N}"[..16];
        Assert.Equal(HttpStatusCode.Created, (await _http.PostAsJsonAsync("/api/hubs", new { hubId }, ct)).StatusCode);
        Assert.Equal(HttpStatusCode.NoContent, (await _http.DeleteAsync($"/api/hubs/{hubId}", ct)).StatusCode);

        // Rotating a revoked hub used to lift the revocation; now it is refused and the revocation stays.
        Assert.Equal(HttpStatusCode.Conflict, (await _http.PostAsJsonAsync($"/api/hubs/{hubId}/rotate", new { }, ct)).StatusCode);
        var store = _app.Services.GetRequiredService<Hubs.HubStore>();
        Assert.NotNull((await store.FindAsync(hubId, ct))!.RevokedAt);

        // Nor can anyone with database access clear it.
        await using var conn = new Npgsql.NpgsqlConnection(_cs);
        await conn.OpenAsync(ct);
        await using var clear = new Npgsql.NpgsqlCommand("UPDATE pf_gateway_hubs SET revoked_at = NULL WHERE hub_id = $1", conn) { Parameters = { new() { Value = hubId } } };
        var e = await Assert.ThrowsAsync<Npgsql.PostgresException>(() => clear.ExecuteNonQueryAsync(ct));
        Assert.Equal("PF001", e.SqlState);

        var audit = await _app.Services.GetRequiredService<EventStore.Audit.AuditLog>().QueryAsync(new(Target: hubId), ct);
        Assert.Equal(["hub.rotate", "hub.revoke", "hub.provision"], audit.Select(a => a.Action));
        Assert.Equal([409, 200, 200], audit.Select(a => a.Outcome));
        Assert.All(audit, a => Assert.Equal("127.0.0.1", a.Remote));
    }
}
