using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;
using Orleans.Connections.Security;
using Orleans.Runtime;
using PumpFleet.Clustering;
using PumpFleet.Contracts.Grains;
using PumpFleet.TestSupport;

namespace PumpFleet.Cluster.Tests;

/// <summary>
/// Mutual TLS between silos and clients (<c>PumpFleet:Tls</c>): two silos in AdoNet mode with certificates from a CA
/// made in the test, composed by the real UsePumpFleetClustering. A client with a certificate of that CA calls grains
/// on both silos; a plain client, a TLS client without a certificate and a client whose certificate comes from
/// another CA are refused.
/// </summary>
public sealed class MutualTlsTests(PostgresFixture pg) : IDisposable
{
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(60);

    // How long a refused client is given to get a grain call through (the TLS handshake timeout is 10 s).
    private static readonly TimeSpan RefusalDeadline = TimeSpan.FromSeconds(30);

    private readonly string _dir = Directory.CreateTempSubdirectory("pf-mtls-").FullName;

    [Fact]
    public async Task ClientWithClusterCertificate_CallsGrainsOnBothSilos_OthersAreRefused()
    {
        var cs = await pg.CreateDatabaseAsync("mtls", typeof(ClusterHostingExtensions).Assembly);
        var clusterId = "mtls-" + Guid.NewGuid().ToString("N")[..8];

        using var ca = CreateCa("CN=PumpFleet test cluster CA");
        using var otherCa = CreateCa("CN=Somebody else's CA");
        var caPath = WritePem("ca.crt", ca.ExportCertificatePem());
        var silo1 = Issue(ca, "silo-1");
        var silo2 = Issue(ca, "silo-2");
        var client = Issue(ca, "dashboard");
        var rogue = Issue(otherCa, "rogue");

        var a = await InProcessSilo.StartSiloAsync(cs, clusterId, Ports.Free(), Ports.Free(), Tls(silo1, caPath));
        var b = await InProcessSilo.StartSiloAsync(cs, clusterId, Ports.Free(), Ports.Free(), Tls(silo2, caPath));
        try
        {
            // The right certificate: the client reaches the cluster, and the silos (which talk to each other over TLS
            // too) both serve grains it calls.
            using (var good = await InProcessSilo.StartClientAsync(cs, clusterId, Tls(client, caPath)))
            {
                var grains = good.Services.GetRequiredService<IGrainFactory>();
                var management = grains.GetGrain<IManagementGrain>(0);
                await Eventually.TrueAsync(async () => (await management.GetHosts(onlyActive: true)).Count == 2, Deadline, "the cluster sees two silos over TLS");
                var serials = Enumerable.Range(1, 16).Select(i => $"TL{clusterId[5..]}{i:D2}").ToArray();
                foreach (var serial in serials)
                {
                    await grains.GetGrain<IPumpIngestGrain>(serial).PairAsync("H1", "test");
                }

#pragma warning disable xUnit1051 // a grain call: its timeout is the client's response timeout
                var stats = await management.GetDetailedGrainStatistics();
#pragma warning restore xUnit1051
                Assert.Equal(2, stats.Where(s => serials.Contains(s.GrainId.Key.ToString())).Select(s => s.SiloAddress).Distinct().Count());
            }

            // No TLS at all.
            await AssertRefusedAsync(cs, clusterId, extra: null, configure: null);

            // TLS, trusting the cluster's CA, but no certificate of its own.
            var caCertificates = new X509Certificate2Collection();
            caCertificates.ImportFromPemFile(caPath);
            await AssertRefusedAsync(cs, clusterId, extra: null, configure: c => c.UseTls(o =>
            {
                o.LocalCertificate = null;
                o.ClientCertificateMode = RemoteCertificateMode.AllowCertificate;
                o.RemoteCertificateValidation = (cert, _, _) => IssuedBy(cert, caCertificates);
            }));

            // A certificate from another CA (the client itself trusts the cluster's CA, so only the silo can refuse it).
            await AssertRefusedAsync(cs, clusterId, Tls(rogue, caPath), configure: null);

            // The silos are unharmed by the refused attempts: a good client still gets in.
            using var again = await InProcessSilo.StartClientAsync(cs, clusterId, Tls(client, caPath));
#pragma warning disable xUnit1051
            var hosts = await again.Services.GetRequiredService<IGrainFactory>().GetGrain<IManagementGrain>(0).GetHosts(onlyActive: true);
#pragma warning restore xUnit1051
            Assert.Equal(2, hosts.Count);
        }
        finally
        {
            await b.StopAsync(CancellationToken.None);
            await a.StopAsync(CancellationToken.None);
            b.Dispose();
            a.Dispose();
        }
    }

    [Fact]
    public void Options_TlsWithoutTrustAnchor_OrWithoutCertificate_AreRejectedAtComposition()
    {
        using var ca = CreateCa("CN=PumpFleet options CA");
        var leaf = Issue(ca, "silo");
        var noAnchor = new Dictionary<string, string?>
        {
            ["PumpFleet:Tls:Enabled"] = "true",
            ["PumpFleet:Tls:CertificatePath"] = leaf.Certificate,
            ["PumpFleet:Tls:KeyPath"] = leaf.Key,
        };
        var e = Assert.Throws<OptionsValidationException>(() => PumpFleetClusterOptions.Read(Configuration(noAnchor)));
        Assert.Contains("PumpFleet:Tls:CaPath", e.Message, StringComparison.Ordinal);

        var noCertificate = new Dictionary<string, string?> { ["PumpFleet:Tls:Enabled"] = "true", ["PumpFleet:Tls:CaPath"] = leaf.Certificate };
        e = Assert.Throws<OptionsValidationException>(() => PumpFleetClusterOptions.Read(Configuration(noCertificate)));
        Assert.Contains("PumpFleet:Tls:CertificatePath", e.Message, StringComparison.Ordinal);

        var missingFile = new Dictionary<string, string?>(noAnchor) { ["PumpFleet:Tls:CaPath"] = Path.Combine(_dir, "nope.crt") };
        e = Assert.Throws<OptionsValidationException>(() => PumpFleetClusterOptions.Read(Configuration(missingFile)));
        Assert.Contains("does not exist", e.Message, StringComparison.Ordinal);

        var badPin = new Dictionary<string, string?>(noAnchor) { ["PumpFleet:Tls:AllowedThumbprints:0"] = "abc" };
        e = Assert.Throws<OptionsValidationException>(() => PumpFleetClusterOptions.Read(Configuration(badPin)));
        Assert.Contains("SHA-256", e.Message, StringComparison.Ordinal);

        // Off (the default) needs nothing.
        Assert.False(PumpFleetClusterOptions.Read(Configuration([])).Tls.Enabled);
    }

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    // Refused means: the client cannot call a grain. Its start either fails or, when the connection is dropped after it
    // was opened, does not finish within the deadline; if it did finish, the grain call must fail.
    private static async Task AssertRefusedAsync(string cs, string clusterId, IEnumerable<KeyValuePair<string, string?>>? extra, Action<IClientBuilder>? configure)
    {
        var builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { DisableDefaults = true });
        builder.Configuration.AddInMemoryCollection(InProcessSilo.Config(clusterId, 1, 2));
        builder.Configuration.AddInMemoryCollection(extra ?? []);
        builder.UseOrleansClient(client =>
        {
            client.UsePumpFleetClustering(builder.Configuration, cs);
            client.Configure<Orleans.Configuration.ClientMessagingOptions>(o => o.ResponseTimeout = TimeSpan.FromSeconds(10));
            configure?.Invoke(client);
        });
        using var host = builder.Build();
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(TestContext.Current.CancellationToken);
        cts.CancelAfter(RefusalDeadline);
        var ex = await Record.ExceptionAsync(async () =>
        {
            await host.StartAsync(cts.Token);
            await host.Services.GetRequiredService<IGrainFactory>().GetGrain<IManagementGrain>(0).GetHosts(onlyActive: true).WaitAsync(cts.Token);
        });
        Assert.NotNull(ex);
        // Refused by the connection, not by a mistake in the test's own configuration.
        Assert.IsNotType<OptionsValidationException>(ex);
        Assert.IsNotType<InvalidOperationException>(ex);
        using var stop = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        await Record.ExceptionAsync(() => host.StopAsync(stop.Token));
    }

    private static bool IssuedBy(X509Certificate2 certificate, X509Certificate2Collection roots)
    {
        using var chain = new X509Chain();
        chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
        chain.ChainPolicy.CustomTrustStore.AddRange(roots);
        chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
        return chain.Build(certificate);
    }

    private static IConfiguration Configuration(IEnumerable<KeyValuePair<string, string?>> values) =>
        new ConfigurationBuilder().AddInMemoryCollection(values).Build();

    private static Dictionary<string, string?> Tls((string Certificate, string Key) leaf, string caPath) => new()
    {
        ["PumpFleet:Tls:Enabled"] = "true",
        ["PumpFleet:Tls:CertificatePath"] = leaf.Certificate,
        ["PumpFleet:Tls:KeyPath"] = leaf.Key,
        ["PumpFleet:Tls:CaPath"] = caPath,
    };

    private static X509Certificate2 CreateCa(string subject)
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest(subject, key, HashAlgorithmName.SHA256);
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(true, false, 0, true));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.KeyCertSign | X509KeyUsageFlags.CrlSign, true));
        request.CertificateExtensions.Add(new X509SubjectKeyIdentifierExtension(request.PublicKey, false));
        var now = DateTimeOffset.UtcNow;
        return request.CreateSelfSigned(now.AddHours(-1), now.AddDays(1));
    }

    // A leaf for both ends of a connection (a silo is server and client), written as PEM certificate + PEM key files,
    // the form of a Kubernetes TLS Secret.
    private (string Certificate, string Key) Issue(X509Certificate2 ca, string name)
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest($"CN={name}", key, HashAlgorithmName.SHA256);
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(false, false, 0, true));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.DigitalSignature, true));
        request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension(
            [new Oid("1.3.6.1.5.5.7.3.1"), new Oid("1.3.6.1.5.5.7.3.2")], false));
        var now = DateTimeOffset.UtcNow;
        using var certificate = request.Create(ca, now.AddMinutes(-30), now.AddHours(12), RandomNumberGenerator.GetBytes(12));
        return (WritePem($"{name}.crt", certificate.ExportCertificatePem()), WritePem($"{name}.key", key.ExportPkcs8PrivateKeyPem()));
    }

    private string WritePem(string file, string pem)
    {
        var path = Path.Combine(_dir, file);
        File.WriteAllText(path, pem);
        return path;
    }
}
