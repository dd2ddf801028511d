using PumpFleet.EventStore.Audit;
using System.Net;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;
using MQTTnet;
using PumpFleet.Gateway.Hosting;
using PumpFleet.Gateway.Tests.Infrastructure;
using PumpFleet.TestSupport;
using static PumpFleet.Gateway.Tests.Infrastructure.Batches;

namespace PumpFleet.Gateway.Tests;

public sealed class TlsAndOptionsTests(PostgresFixture pg)
{
    [Fact]
    public async Task EmbeddedBroker_WithPkcs12Certificate_ServesTlsOnly()
    {
        var dir = Directory.CreateTempSubdirectory("pumpfleet-tls-").FullName;
        try
        {
            using var rsa = RSA.Create(2048);
            var request = new CertificateRequest("CN=pumpfleet-gateway-test", rsa, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
            var san = new SubjectAlternativeNameBuilder();
            san.AddIpAddress(IPAddress.Loopback);
            request.CertificateExtensions.Add(san.Build());
            using var cert = request.CreateSelfSigned(DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddDays(1));
            var pfx = Path.Combine(dir, "gateway.pfx");
            await File.WriteAllBytesAsync(pfx, cert.Export(X509ContentType.Pfx, "pfx-password"), TestContext.Current.CancellationToken);

            var cs = await pg.CreateDatabaseAsync("gwtls", typeof(GatewayServiceCollectionExtensions).Assembly);
            await using var cluster = await PumpCluster.StartAsync(cs);
            var tlsPort = Ports.Free();
            await using var gw = await GatewayUnderTest.StartAsync(cs, cluster.Grains, settings: new Dictionary<string, string?>
            {
                ["Gateway:Mqtt:PlainEnabled"] = "false",
                ["Gateway:Mqtt:TlsPort"] = tlsPort.ToString(System.Globalization.CultureInfo.InvariantCulture),
                ["Gateway:Mqtt:TlsCertificatePath"] = pfx,
                ["Gateway:Mqtt:TlsCertificatePassword"] = "pfx-password",
            });
            var secret = await gw.ProvisionAsync("tls-hub-1");
            await gw.Admin.PairAsync("tls-hub-1", "TLS-P-1", AuditActor.System("test"), null, TestContext.Current.CancellationToken);
            await using var hub = TestHub.Create("tls-hub-1");

            var connect = await hub.ConnectAsync(tlsPort, secret, tlsThumbprint: cert.GetCertHashString());

            Assert.Equal(MqttClientConnectResultCode.Success, connect.ResultCode);
            Assert.True((await hub.PublishAsync("TLS-P-1", Doses(1, 2))).IsSuccess);
            await hub.WaitForAckAsync("TLS-P-1", 2);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Fact]
    public void GrainCallAttemptTimeout_AboveIngestTimeout_IsRefusedAtStart()
    {
        var validator = new MqttGatewayOptionsValidator(new Env(Environments.Production));
        var result = validator.Validate(null, new MqttGatewayOptions { IngestTimeout = TimeSpan.FromSeconds(5), GrainCallAttemptTimeout = TimeSpan.FromSeconds(6) });
        Assert.True(result.Failed);
        Assert.Contains("GrainCallAttemptTimeout", result.FailureMessage, StringComparison.Ordinal);
        Assert.True(validator.Validate(null, new MqttGatewayOptions()).Succeeded, "the defaults are valid");
    }

    [Fact]
    public void VerificationBudget_OutOfRange_IsRefusedAtStart()
    {
        var validator = new HubAuthOptionsValidator(new Env(Environments.Production));
        var result = validator.Validate(null, new HubAuthOptions { VerificationBudgetPerSecond = 0, VerificationBudgetBurst = 0.5 });
        Assert.True(result.Failed);
        Assert.Contains("VerificationBudgetPerSecond", result.FailureMessage, StringComparison.Ordinal);
        Assert.Contains("VerificationBudgetBurst", result.FailureMessage, StringComparison.Ordinal);
        Assert.True(validator.Validate(null, new HubAuthOptions()).Succeeded, "the defaults are valid");
    }

    private sealed class Env(string name) : IHostEnvironment
    {
        public string EnvironmentName { get; set; } = name;
        public string ApplicationName { get; set; } = "test";
        public string ContentRootPath { get; set; } = "/";
        public Microsoft.Extensions.FileProviders.IFileProvider ContentRootFileProvider { get; set; } = null!;
    }

    [Fact]
    public void Validation_ExternalWithoutHost_AndTlsOnlyWithoutCertificate_FailWithClearMessages()
    {
        var v = new MqttGatewayOptionsValidator(new Env(Environments.Production));

        var external = v.Validate(null, new MqttGatewayOptions { Mode = GatewayMode.External });
        var tlsOnly = v.Validate(null, new MqttGatewayOptions { PlainEnabled = false });

        Assert.Contains("Gateway:Mqtt:External:Host is required", external.FailureMessage, StringComparison.Ordinal);
        Assert.Contains("PlainEnabled is false but no Gateway:Mqtt:TlsCertificatePath", tlsOnly.FailureMessage, StringComparison.Ordinal);
        Assert.True(v.Validate(null, new MqttGatewayOptions()).Succeeded);
    }

    [Fact]
    public void Validation_DevelopmentShortcutsOutsideDevelopment_AreRefused()
    {
        var options = new HubAuthOptions { DevFleetSecret = "0123456789abcdef-fleet", AutoPairOnFirstBatch = true };
        foreach (var environment in new[] { Environments.Production, Environments.Staging, "Demo" })
        {
            var refused = new HubAuthOptionsValidator(new Env(environment)).Validate(null, options);
            Assert.Contains("DevFleetSecret lets any hub derive its own password", refused.FailureMessage, StringComparison.Ordinal);
            Assert.Contains("AutoPairOnFirstBatch lets the first hub claim any pump", refused.FailureMessage, StringComparison.Ordinal);
            var untrusted = new MqttGatewayOptionsValidator(new Env(environment)).Validate(null, new MqttGatewayOptions
            {
                Mode = GatewayMode.External,
                External = { Host = "127.0.0.1", UseTls = true, AllowUntrustedCertificates = true },
            });
            Assert.Contains("AllowUntrustedCertificates accepts any broker certificate", untrusted.FailureMessage, StringComparison.Ordinal);
        }

        var development = new Env(Environments.Development);
        Assert.True(new HubAuthOptionsValidator(development).Validate(null, options).Succeeded);
        Assert.True(new MqttGatewayOptionsValidator(development).Validate(null, new MqttGatewayOptions
        {
            Mode = GatewayMode.External,
            External = { Host = "127.0.0.1", UseTls = true, AllowUntrustedCertificates = true },
        }).Succeeded);
    }

    [Fact]
    public async Task Start_WithInvalidOptions_FailsOnStart()
    {
        var cs = await pg.CreateDatabaseAsync("gwopt", typeof(GatewayServiceCollectionExtensions).Assembly);
        var e = await Assert.ThrowsAsync<OptionsValidationException>(() => GatewayUnderTest.StartAsync(cs, NoGrains.Create(), settings: new Dictionary<string, string?>
        {
            ["Gateway:Mqtt:MaxInFlight"] = "0",
        }));
        Assert.Contains("MaxInFlight", e.Message, StringComparison.Ordinal);
    }

    /// <summary>Never called: the host must fail before any grain is used.</summary>
    public class NoGrains : System.Reflection.DispatchProxy
    {
        public static IGrainFactory Create() => Create<IGrainFactory, NoGrains>();

        protected override object? Invoke(System.Reflection.MethodInfo? targetMethod, object?[]? args) => throw new NotSupportedException();
    }
}
