using System.Globalization;
using System.Text.RegularExpressions;

namespace PumpFleet.Dashboard.Api;

/// <summary>
/// Parses query parameters as strings and collects what is wrong with them, so every bad parameter comes back as
/// an RFC 9457 validation problem naming the parameter and the reason, instead of the framework's bare 400.
/// </summary>
internal sealed partial class QueryParameters
{
    private readonly Dictionary<string, string[]> _errors = new(StringComparer.Ordinal);

    public bool HasErrors => _errors.Count > 0;

    public void Error(string name, string message) => _errors[name] = [message];

    public IResult Problem() => Results.ValidationProblem(_errors, detail: "One or more query parameters are invalid.", title: "Invalid parameters");

    public int Int(string name, string? raw, int @default, int min, int max)
    {
        if (raw is null)
        {
            return @default;
        }

        if (!int.TryParse(raw, NumberStyles.Integer, CultureInfo.InvariantCulture, out var v))
        {
            Error(name, $"'{raw}' is not an integer.");
            return @default;
        }

        if (v < min || v > max)
        {
            Error(name, $"must be between {min} and {max} (got {v}).");
            return @default;
        }

        return v;
    }

    public long Long(string name, string? raw, long @default, long min)
    {
        if (raw is null)
        {
            return @default;
        }

        if (!long.TryParse(raw, NumberStyles.Integer, CultureInfo.InvariantCulture, out var v) || v < min)
        {
            Error(name, $"must be an integer ≥ {min} (got '{raw}').");
            return @default;
        }

        return v;
    }

    /// <summary>A number in (0, max].</summary>
    public double Fraction(string name, string? raw, double @default, double max)
    {
        if (raw is null)
        {
            return @default;
        }

        if (!double.TryParse(raw, NumberStyles.Float, CultureInfo.InvariantCulture, out var v) || double.IsNaN(v) || v <= 0 || v > max)
        {
            Error(name, $"must be a number above 0 and at most {max.ToString(CultureInfo.InvariantCulture)} (got '{raw}').");
            return @default;
        }

        return v;
    }

    public string? OneOf(string name, string? raw, IReadOnlyCollection<string> allowed)
    {
        if (raw is null)
        {
            return null;
        }

        if (!allowed.Contains(raw))
        {
            Error(name, $"'{raw}' is not one of: {string.Join(", ", allowed)}.");
            return null;
        }

        return raw;
    }

    public string? Text(string name, string? raw, int maxLength = 64)
    {
        if (raw is null)
        {
            return null;
        }

        if (raw.Length == 0 || raw.Length > maxLength)
        {
            Error(name, $"must be 1 to {maxLength} characters.");
            return null;
        }

        return raw;
    }

    public DateTimeOffset? Time(string name, string? raw)
    {
        if (raw is null)
        {
            return null;
        }

        if (!DateTimeOffset.TryParse(raw, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal | DateTimeStyles.AdjustToUniversal, out var t))
        {
            Error(name, $"'{raw}' is not an RFC 3339 time (e.g. 2026-11-24T03:00:00Z).");
            return null;
        }

        return t;
    }

    public DateOnly? Date(string name, string? raw)
    {
        if (raw is null)
        {
            return null;
        }

        if (DateOnly.TryParseExact(raw, "yyyy-MM-dd", CultureInfo.InvariantCulture, DateTimeStyles.None, out var d))
        {
            return d;
        }

        if (DateTimeOffset.TryParse(raw, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal | DateTimeStyles.AdjustToUniversal, out var t))
        {
            return DateOnly.FromDateTime(t.UtcDateTime);
        }

        Error(name, $"'{raw}' is not a date (yyyy-MM-dd) or an RFC 3339 time.");
        return null;
    }

    /// <summary>The hub protocol's identifier rule (protocol.md §1).</summary>
    public static bool IsIdentifier(string s) => IdentifierRegex().IsMatch(s);

    [GeneratedRegex("^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")]
    private static partial Regex IdentifierRegex();
}
