using PumpFleet.EventStore.Audit;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using PumpFleet.Gateway.Hosting;
using PumpFleet.Gateway.Hubs;
using PumpFleet.Gateway.Quarantine;
using PumpFleet.TestSupport;

namespace PumpFleet.Gateway.Tests.Infrastructure;

/// <summary>The gateway library composed in a plain host, as the gateway process and the all-in-one host do.</summary>
public sealed class GatewayUnderTest : IAsyncDisposable
{
    private readonly IHost _host;
    private bool _stopped;

    private GatewayUnderTest(IHost host, int port)
    {
        _host = host;
        Port = port;
    }

    public int Port { get; }

    public IServiceProvider Services => _host.Services;

    public HubAdmin Admin => _host.Services.GetRequiredService<HubAdmin>();

    public QuarantineStore Quarantine => _host.Services.GetRequiredService<QuarantineStore>();

    public static async Task<GatewayUnderTest> StartAsync(string connectionString, IGrainFactory grains, int? port = null,
        IDictionary<string, string?>? settings = null, string environment = "Development", ILoggerProvider? logs = null)
    {
        var mqttPort = port ?? Ports.Free();
        var builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { EnvironmentName = environment, DisableDefaults = true });
        var config = new Dictionary<string, string?>
        {
            ["ConnectionStrings:PumpFleet"] = connectionString,
            ["Gateway:Mqtt:Port"] = mqttPort.ToString(System.Globalization.CultureInfo.InvariantCulture),
            ["Gateway:Mqtt:BindAddress"] = "127.0.0.1",
            ["Gateway:Mqtt:IngestTimeout"] = "00:00:15",
            ["Gateway:Hubs:Pbkdf2Iterations"] = "10000",
        };
        foreach (var (k, v) in settings ?? new Dictionary<string, string?>())
        {
            config[k] = v;
        }

        builder.Configuration.AddInMemoryCollection(config);
        builder.Logging.AddSimpleConsole().SetMinimumLevel(LogLevel.Warning);
        if (logs is not null)
        {
            builder.Logging.AddProvider(logs);
        }

        builder.Services.AddSingleton(grains);
        builder.Services.AddPumpFleetGateway(builder.Configuration);
        var host = builder.Build();
        await host.StartAsync(TestContext.Current.CancellationToken);
        return new GatewayUnderTest(host, mqttPort);
    }

    /// <summary>Provisions a hub with a known secret and returns the secret.</summary>
    public async Task<string> ProvisionAsync(string hubId)
    {
        var r = await Admin.ProvisionAsync(hubId, $"secret-of-{hubId}-0123456789", AuditActor.System("test"), null, TestContext.Current.CancellationToken);
        Assert.Equal(HubAdminStatus.Ok, r.Status);
        return r.Secret!;
    }

    public async Task StopAsync()
    {
        if (!_stopped)
        {
            _stopped = true;
            await _host.StopAsync(CancellationToken.None);
        }
    }

    public async ValueTask DisposeAsync()
    {
        await StopAsync();
        _host.Dispose();
    }
}
