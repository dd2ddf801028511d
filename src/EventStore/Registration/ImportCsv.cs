namespace PumpFleet.EventStore.Registration;

/// <summary>
/// The registration files' CSV as the import commands read it (<c>silo pumps import</c>, <c>silo hubs import</c>;
/// docs/operations.md "Registering a fleet"): a header line, then one record per line, fields split on ',' (no quoting:
/// ids and secrets never hold a comma); blank lines are skipped. Errors name their line; at most <see cref="ErrorLimit"/>
/// are kept, since one refuses the whole file anyway.
/// </summary>
public static class ImportCsv
{
    /// <summary>How many errors an import reports at most.</summary>
    public const int ErrorLimit = 100;

    /// <summary>
    /// Reads <paramref name="csv"/>: the first non-blank line must satisfy <paramref name="headerOk"/> (its fields
    /// trimmed and joined with ','), else the one error is <paramref name="headerError"/> of the line; each further line
    /// goes to <paramref name="row"/> with its number and fields, which returns an error message or null when it took
    /// the line. A file without a header gives <paramref name="emptyError"/>.
    /// </summary>
    public static async Task<List<(int Line, string Message)>> ReadAsync(
        TextReader csv, Func<string, bool> headerOk, Func<string, string> headerError, string emptyError,
        Func<int, string[], string?> row, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(csv);
        ArgumentNullException.ThrowIfNull(headerOk);
        ArgumentNullException.ThrowIfNull(headerError);
        ArgumentNullException.ThrowIfNull(row);
        var errors = new List<(int, string)>();
        var line = 0;
        var sawHeader = false;
        while (await csv.ReadLineAsync(ct) is { } text)
        {
            line++;
            if (string.IsNullOrWhiteSpace(text))
            {
                continue;
            }

            if (!sawHeader)
            {
                sawHeader = true;
                if (!headerOk(string.Join(',', text.Split(',').Select(f => f.Trim()))))
                {
                    errors.Add((line, headerError(Shorten(text))));
                    return errors;
                }

                continue;
            }

            if (row(line, text.Split(',')) is { } error && errors.Count < ErrorLimit)
            {
                errors.Add((line, error));
            }
        }

        if (!sawHeader)
        {
            errors.Add((Math.Max(line, 1), emptyError));
        }

        return errors;
    }

    /// <summary>Why <paramref name="id"/>, given as <paramref name="what"/> (e.g. "hub id"), is refused.</summary>
    public static string InvalidId(string what, string id) =>
        $"{what} '{Shorten(id)}' is not a valid id (letters, digits, '.', '_', '-'; 1 to 64, starting with a letter or digit)";

    /// <summary><paramref name="s"/> cut to 80 characters for an error message.</summary>
    public static string Shorten(string s)
    {
        ArgumentNullException.ThrowIfNull(s);
        return s.Length <= 80 ? s : s[..77] + "...";
    }
}
