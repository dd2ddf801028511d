using System.Net.Security;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Orleans.Connections.Security;
using Orleans.Hosting;

namespace PumpFleet.Clustering;

/// <summary>
/// Applies <see cref="ClusterTlsOptions"/> to a silo or a client: loads this process's certificate and the trust
/// anchors once, at composition (a missing key or an unreadable file stops the process before it joins), and
/// validates every peer against them.
/// </summary>
internal static class ClusterTls
{
    public static void Apply(ISiloBuilder silo, ClusterTlsOptions options)
    {
        var (certificate, validator) = Load(options);
        silo.UseTls(tls => Configure(tls, options, certificate, validator));
    }

    public static void Apply(IClientBuilder client, ClusterTlsOptions options)
    {
        var (certificate, validator) = Load(options);
        client.UseTls(tls =>
        {
            Configure(tls, options, certificate, validator);
            // The client presents its certificate to every silo; the silos require it (RemoteCertificateMode on the silo).
            tls.ClientCertificateMode = RemoteCertificateMode.RequireCertificate;
        });
    }

    private static void Configure(TlsOptions tls, ClusterTlsOptions options, X509Certificate2 certificate, RemoteCertificateValidator validator)
    {
        tls.LocalCertificate = certificate;
        // Both directions: a silo refuses a client (or silo) without a certificate, a client refuses a silo without one.
        tls.RemoteCertificateMode = RemoteCertificateMode.RequireCertificate;
        tls.RemoteCertificateValidation = validator;
        tls.HandshakeTimeout = options.HandshakeTimeout;
    }

    private static (X509Certificate2 Certificate, RemoteCertificateValidator Validator) Load(ClusterTlsOptions options)
    {
        var certificate = LoadOwnCertificate(options);
        if (!certificate.HasPrivateKey)
        {
            throw new InvalidOperationException($"PumpFleet:Tls: the certificate {certificate.Subject} has no private key.");
        }

        X509Certificate2Collection? roots = null;
        if (options.CaPath is { Length: > 0 } caPath)
        {
            roots = [];
            roots.ImportFromPemFile(caPath);
            if (roots.Count == 0)
            {
                throw new InvalidOperationException($"PumpFleet:Tls:CaPath '{caPath}' holds no PEM certificate.");
            }
        }

        var pins = options.NormalisedThumbprints.ToHashSet(StringComparer.Ordinal);
        return (certificate, new PeerValidator(roots, pins).Validate);
    }

    private static X509Certificate2 LoadOwnCertificate(ClusterTlsOptions options)
    {
        if (options.StoreSubject is { Length: > 0 } subject)
        {
            return CertificateLoader.LoadFromStoreCert(subject, options.StoreName.ToString(), options.StoreLocation, allowInvalid: false, server: true);
        }

        var path = options.CertificatePath!;
        if (path.EndsWith(".pfx", StringComparison.OrdinalIgnoreCase) || path.EndsWith(".p12", StringComparison.OrdinalIgnoreCase))
        {
            return X509CertificateLoader.LoadPkcs12FromFile(path, options.CertificatePassword, X509KeyStorageFlags.Exportable);
        }

        using var pem = options.CertificatePassword is { Length: > 0 } password
            ? X509Certificate2.CreateFromEncryptedPemFile(path, password, options.KeyPath)
            : X509Certificate2.CreateFromPemFile(path, options.KeyPath);
        // A PEM key is ephemeral; SslStream on Linux needs the key in a PKCS#12 form, so round-trip it once here.
        return X509CertificateLoader.LoadPkcs12(pem.Export(X509ContentType.Pkcs12), null, X509KeyStorageFlags.Exportable);
    }

    /// <summary>Accepts a peer only when every configured check passes: the chain to our CA, the pinned thumbprints.</summary>
    private sealed class PeerValidator(X509Certificate2Collection? roots, HashSet<string> pins)
    {
        public bool Validate(X509Certificate2 certificate, X509Chain? presented, SslPolicyErrors errors)
        {
            if ((errors & SslPolicyErrors.RemoteCertificateNotAvailable) != 0)
            {
                return false;
            }

            // Name mismatches are expected (peers are dialled by IP) and chain errors against the system store are
            // irrelevant: trust comes from our CA and pins only, checked here.
            if (pins.Count > 0 && !pins.Contains(certificate.GetCertHashString(HashAlgorithmName.SHA256)))
            {
                return false;
            }

            if (roots is not null)
            {
                using var chain = new X509Chain();
                chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
                chain.ChainPolicy.CustomTrustStore.AddRange(roots);
                chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
                if (presented is not null)
                {
                    // Intermediates the peer sent along.
                    foreach (var element in presented.ChainElements)
                    {
                        chain.ChainPolicy.ExtraStore.Add(element.Certificate);
                    }
                }

                return chain.Build(certificate);
            }

            // Pins alone: the pinned certificate must still be within its validity period.
            var now = TimeProvider.System.GetUtcNow().UtcDateTime;
            return certificate.NotBefore.ToUniversalTime() <= now && now <= certificate.NotAfter.ToUniversalTime();
        }
    }
}
