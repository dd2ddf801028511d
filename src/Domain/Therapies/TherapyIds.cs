using System.Text.RegularExpressions;

namespace PumpFleet.Domain.Therapies;

/// <summary>
/// The rule for a therapy id: a pseudonymous code the clinic assigns (e.g. <c>TH-2026-0042</c>), never a name, a
/// record number that identifies a person elsewhere, or a date of birth. What a program can check without refusing
/// real codes: the protocol's identifier characters (letters, digits, <c>.</c>, <c>_</c>, <c>-</c>; no spaces, no
/// <c>@</c>), 3–64 characters, and at least one digit, which refuses the shapes a typed name takes
/// (<c>John Smith</c>, <c>john.smith</c>, <c>SmithJ</c>). The rest is the clinic's duty (docs/api.md).
/// </summary>
public static partial class TherapyIds
{
    [GeneratedRegex("^[A-Za-z0-9][A-Za-z0-9._-]{2,63}$", RegexOptions.CultureInvariant)]
    private static partial Regex Shape();

    /// <summary>Null when <paramref name="id"/> is acceptable, otherwise why not.</summary>
    public static string? Check(string? id)
    {
        if (string.IsNullOrEmpty(id))
        {
            return "is required: the clinic's pseudonymous therapy id.";
        }

        if (id.Any(char.IsWhiteSpace))
        {
            return "must not contain spaces: a therapy id is a pseudonymous code, never a patient's name.";
        }

        if (!Shape().IsMatch(id))
        {
            return "must be 3 to 64 characters of letters, digits, '.', '_' or '-', starting with a letter or digit.";
        }

        if (!id.Any(char.IsAsciiDigit))
        {
            // Names are letters only; every pseudonymous scheme we know numbers its codes.
            return "must contain at least one digit: a therapy id is a pseudonymous code (e.g. TH-2026-0042), never a name.";
        }

        return null;
    }
}
