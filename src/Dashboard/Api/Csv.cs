using System.Text;

namespace PumpFleet.Dashboard.Api;

/// <summary>
/// RFC 4180 fields: a field with a comma, a double quote, CR or LF is quoted and its quotes doubled. A field that a
/// spreadsheet would run as a formula (first character =, +, -, @, tab or CR) gets a leading apostrophe first
/// (OWASP "CSV injection"): notes and summaries are free text typed by people, and complaint files are opened in
/// spreadsheets. The JSON form of an export carries every value unaltered.
/// </summary>
internal static class Csv
{
    public static string Field(string? value)
    {
        if (string.IsNullOrEmpty(value))
        {
            return "";
        }

        if (value[0] is '=' or '+' or '-' or '@' or '\t' or '\r')
        {
            value = "'" + value;
        }

        return value.AsSpan().IndexOfAny(",\"\r\n") < 0 ? value : "\"" + value.Replace("\"", "\"\"", StringComparison.Ordinal) + "\"";
    }

    public static string Line(params string?[] fields)
    {
        var sb = new StringBuilder();
        for (var i = 0; i < fields.Length; i++)
        {
            if (i > 0)
            {
                sb.Append(',');
            }

            sb.Append(Field(fields[i]));
        }

        return sb.Append("\r\n").ToString();
    }
}
