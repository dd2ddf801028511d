using System.Globalization;
using System.Security.Cryptography;
using System.Text;

namespace PumpFleet.Dashboard.Auth;

/// <summary>
/// Password hashes for configuration: <c>pbkdf2-sha256$iterations$salt-base64$hash-base64</c>. PBKDF2 is in the base
/// library (no extra package), and the iteration count travels with the hash so it can be raised later.
/// </summary>
public static class PasswordHasher
{
    private const int Iterations = 210_000;

    /// <summary>Hashes a password with a fresh random salt.</summary>
    public static string Hash(string password)
    {
        ArgumentNullException.ThrowIfNull(password);
        var salt = RandomNumberGenerator.GetBytes(16);
        var hash = Rfc2898DeriveBytes.Pbkdf2(Encoding.UTF8.GetBytes(password), salt, Iterations, HashAlgorithmName.SHA256, 32);
        return $"pbkdf2-sha256${Iterations}${Convert.ToBase64String(salt)}${Convert.ToBase64String(hash)}";
    }

    /// <summary>True when <paramref name="hash"/> has the expected shape.</summary>
    public static bool IsWellFormed(string hash) => TryParse(hash, out _, out _, out _);

    /// <summary>Checks a password in constant time.</summary>
    public static bool Verify(string password, string hash)
    {
        ArgumentNullException.ThrowIfNull(password);
        if (!TryParse(hash, out var iterations, out var salt, out var expected))
        {
            return false;
        }

        var actual = Rfc2898DeriveBytes.Pbkdf2(Encoding.UTF8.GetBytes(password), salt, iterations, HashAlgorithmName.SHA256, expected.Length);
        return CryptographicOperations.FixedTimeEquals(actual, expected);
    }

    private static bool TryParse(string hash, out int iterations, out byte[] salt, out byte[] expected)
    {
        iterations = 0;
        salt = [];
        expected = [];
        var parts = (hash ?? "").Split('$');
        if (parts.Length != 4 || parts[0] != "pbkdf2-sha256" || !int.TryParse(parts[1], NumberStyles.None, CultureInfo.InvariantCulture, out iterations) || iterations < 10_000)
        {
            return false;
        }

        try
        {
            salt = Convert.FromBase64String(parts[2]);
            expected = Convert.FromBase64String(parts[3]);
            return salt.Length >= 8 && expected.Length >= 16;
        }
        catch (FormatException)
        {
            return false;
        }
    }
}
