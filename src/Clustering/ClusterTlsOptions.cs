using System.ComponentModel.DataAnnotations;
using System.Globalization;
using System.Security.Cryptography.X509Certificates;

namespace PumpFleet.Clustering;

/// <summary>
/// Mutual TLS on every Orleans connection (<c>PumpFleet:Tls</c>): silo to silo and client (gateway, dashboard, CLI)
/// to silo. Off by default, for local use; the Helm chart turns it on with certificates from a Secret. Every process
/// of the cluster presents its own certificate and accepts a peer only when the peer's certificate chains to
/// <see cref="CaPath"/> and/or matches one of <see cref="AllowedThumbprints"/> (every check configured must pass).
/// Host names are not checked: silos and clients connect to pod IPs from the membership table, so the identity of a
/// peer is "holds a key certified by our CA (or pinned)", not a DNS name (docs/security.md).
/// </summary>
public sealed class ClusterTlsOptions
{
    /// <summary>Turns TLS on for every Orleans connection of this process. Silos and clients of one cluster must agree.</summary>
    public bool Enabled { get; set; }

    /// <summary>
    /// This process's certificate: a PEM file (with the key in <see cref="KeyPath"/> or in the same file) or a PKCS#12
    /// file (<c>.pfx</c>/<c>.p12</c>, password in <see cref="CertificatePassword"/>). Either this or <see cref="StoreSubject"/>.
    /// </summary>
    public string? CertificatePath { get; set; }

    /// <summary>PEM private key of <see cref="CertificatePath"/> when it is not in the same file (e.g. <c>tls.key</c> of a Kubernetes TLS Secret).</summary>
    public string? KeyPath { get; set; }

    /// <summary>Password of a PKCS#12 <see cref="CertificatePath"/>, or of an encrypted PEM key.</summary>
    public string? CertificatePassword { get; set; }

    /// <summary>Subject of a certificate in the certificate store (<see cref="StoreName"/>, <see cref="StoreLocation"/>) instead of a file.</summary>
    public string? StoreSubject { get; set; }

    /// <summary>The store searched for <see cref="StoreSubject"/>.</summary>
    public StoreName StoreName { get; set; } = StoreName.My;

    /// <summary>The store location searched for <see cref="StoreSubject"/>.</summary>
    public StoreLocation StoreLocation { get; set; } = StoreLocation.CurrentUser;

    /// <summary>
    /// PEM file with the certificate authority (or authorities) that issue the cluster's certificates. A peer must
    /// chain to one of them; the system's trust store is not used, so a certificate from a public CA does not get in.
    /// </summary>
    public string? CaPath { get; set; }

    /// <summary>
    /// SHA-256 thumbprints (hex, 64 characters; colons and spaces ignored) of the peer certificates accepted. Pinning,
    /// alone or on top of <see cref="CaPath"/>.
    /// </summary>
    public IList<string> AllowedThumbprints { get; set; } = [];

    /// <summary>How long a TLS handshake may take before the connection is dropped.</summary>
    public TimeSpan HandshakeTimeout { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>The thumbprints normalised to upper-case hex without separators.</summary>
    internal IReadOnlyList<string> NormalisedThumbprints =>
        [.. AllowedThumbprints.Select(t => new string([.. t.Where(c => c is not (':' or ' ' or '-'))]).ToUpperInvariant()).Where(t => t.Length > 0)];

    internal IEnumerable<ValidationResult> Validate()
    {
        if (!Enabled)
        {
            yield break;
        }

        const string Prefix = "PumpFleet:Tls:";
        var hasFile = CertificatePath is { Length: > 0 };
        var hasStore = StoreSubject is { Length: > 0 };
        if (hasFile == hasStore)
        {
            yield return new ValidationResult($"{Prefix}Enabled needs exactly one of {Prefix}CertificatePath (PEM or PKCS#12 file) and {Prefix}StoreSubject (certificate store).");
        }

        foreach (var (name, path) in new[] { (nameof(CertificatePath), CertificatePath), (nameof(KeyPath), KeyPath), (nameof(CaPath), CaPath) })
        {
            if (path is { Length: > 0 } && !File.Exists(path))
            {
                yield return new ValidationResult($"{Prefix}{name} '{path}' does not exist.");
            }
        }

        if (KeyPath is { Length: > 0 } && !hasFile)
        {
            yield return new ValidationResult($"{Prefix}KeyPath is the key of {Prefix}CertificatePath, which is not set.");
        }

        var thumbprints = NormalisedThumbprints;
        if (CaPath is not { Length: > 0 } && thumbprints.Count == 0)
        {
            // Without a trust anchor the only choices would be "any certificate" or the system store: neither says who may call a grain.
            yield return new ValidationResult($"{Prefix}Enabled needs {Prefix}CaPath (the cluster's CA) or {Prefix}AllowedThumbprints to validate peers.");
        }

        foreach (var t in thumbprints)
        {
            if (t.Length != 64 || !t.All(char.IsAsciiHexDigit))
            {
                yield return new ValidationResult(string.Create(CultureInfo.InvariantCulture,
                    $"{Prefix}AllowedThumbprints: '{t}' is not a SHA-256 thumbprint (64 hex digits)."));
            }
        }

        if (HandshakeTimeout <= TimeSpan.Zero || HandshakeTimeout > TimeSpan.FromMinutes(5))
        {
            yield return new ValidationResult($"{Prefix}HandshakeTimeout must be between 0 and 5 min.");
        }
    }
}
