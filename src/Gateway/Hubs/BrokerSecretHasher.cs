using System.Globalization;
using System.Security.Cryptography;
using System.Text;

namespace PumpFleet.Gateway.Hubs;

/// <summary>
/// Hub secrets hashed the way mosquitto 2's password file stores them: <c>$7$iterations$salt$hash</c>, PBKDF2 with
/// HMAC-SHA512, a 12-byte salt and a 64-byte hash, both base64. Our own hash (<see cref="SecretHasher"/>) cannot be
/// turned into this form, so it is computed from the plaintext when a secret is created or rotated and kept next
/// to it (018_hub_registry_changes.sql); the broker's files are then generated without ever seeing a secret.
/// </summary>
public static class BrokerSecretHasher
{
    private const int SaltBytes = 12;
    private const int HashBytes = 64;

    /// <summary>Hashes <paramref name="secret"/> with a fresh salt.</summary>
    public static string Hash(string secret, int iterations)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(iterations, 1);
        var salt = RandomNumberGenerator.GetBytes(SaltBytes);
        var hash = Rfc2898DeriveBytes.Pbkdf2(Encoding.UTF8.GetBytes(secret), salt, iterations, HashAlgorithmName.SHA512, HashBytes);
        return string.Create(CultureInfo.InvariantCulture, $"$7${iterations}${Convert.ToBase64String(salt)}${Convert.ToBase64String(hash)}");
    }

    /// <summary>True when <paramref name="secret"/> matches a <c>$7$</c> hash; constant-time comparison.</summary>
    public static bool Verify(string secret, string stored)
    {
        var parts = stored.Split('$');
        if (parts.Length != 5 || parts[0] != "" || parts[1] != "7" ||
            !int.TryParse(parts[2], NumberStyles.None, CultureInfo.InvariantCulture, out var iterations) || iterations < 1)
        {
            return false;
        }

        byte[] salt, expected;
        try
        {
            salt = Convert.FromBase64String(parts[3]);
            expected = Convert.FromBase64String(parts[4]);
        }
        catch (FormatException)
        {
            return false;
        }

        var actual = Rfc2898DeriveBytes.Pbkdf2(Encoding.UTF8.GetBytes(secret), salt, iterations, HashAlgorithmName.SHA512, expected.Length);
        return CryptographicOperations.FixedTimeEquals(actual, expected);
    }
}
