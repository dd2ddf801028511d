using System.Globalization;
using System.Text;

namespace PumpFleet.Gateway.Tests.Fuzz;

/// <summary>
/// Generates hub messages for fuzzing from a seeded <see cref="Random"/>: well-formed batches with reordered,
/// duplicated, overlapping and far-off seq ranges and <c>events.lost</c> declarations, then (often) mutated at the
/// text or byte level with the classes of damage the gateway must answer: lone surrogate escapes, control
/// characters, extreme numbers, duplicate keys, deep nesting, over-long strings, invalid UTF-8, truncation.
/// The same seed always gives the same messages.
/// </summary>
public static class HostileBatches
{
    private static readonly string[] Mutations =
    [
        "lone-surrogate", "control-char", "extreme-number", "duplicate-key", "deep-nesting", "long-string",
        "invalid-utf8", "truncate", "flip-byte", "seq-extreme", "wrong-type", "drop-field",
    ];

    /// <summary>Names of the mutation classes, for reporting.</summary>
    public static IReadOnlyList<string> Classes => Mutations;

    /// <summary>A well-formed batch whose seqs come from <paramref name="seqs"/> (any order, duplicates allowed).</summary>
    public static string Batch(Random rng, IReadOnlyList<long> seqs, bool withDevice)
    {
        var events = seqs.Select(s => Event(rng, s)).ToList();
        var device = withDevice ? "\"device\":{\"model\":\"SM2-40\",\"firmware\":\"4.2.1\",\"lot\":\"L2291\",\"reservoirCapacityMl\":40}," : "";
        return $"{{\"v\":1,{device}\"events\":[{string.Join(",", events)}]}}";
    }

    /// <summary>One event of a random type with plausible values.</summary>
    public static string Event(Random rng, long seq)
    {
        var at = new DateTimeOffset(2026, 11, 1, 0, 0, 0, TimeSpan.Zero).AddMinutes(seq % 100_000);
        var t = at.ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", CultureInfo.InvariantCulture);
        var from = at.AddHours(-1).ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", CultureInfo.InvariantCulture);
        string S(FormattableString f) => f.ToString(CultureInfo.InvariantCulture);
        return rng.Next(9) switch
        {
            0 => S($$"""{"seq":{{seq}},"type":"dose.delivered","at":"{{t}}","from":"{{from}}","volumeMl":{{rng.NextDouble() * 0.05:0.#####}},"kind":"basal"}"""),
            1 => S($$"""{"seq":{{seq}},"type":"status","at":"{{t}}","batteryPct":{{rng.Next(0, 101)}},"motor":"running"}"""),
            2 => S($$"""{"seq":{{seq}},"type":"reservoir.level","at":"{{t}}","volumeMl":{{rng.NextDouble() * 40:0.###}},"source":"measured"}"""),
            3 => S($$"""{"seq":{{seq}},"type":"alarm.raised","at":"{{t}}","code":"LOW_RESERVOIR","severity":"non-critical"}"""),
            4 => S($$$"""{"seq":{{{seq}}},"type":"prescription.set","at":"{{{t}}}","drug":"morphine","concentration":{"value":25,"unit":"mg/mL"},"mode":"flex","schedule":[{"start":"08:00","rateMlPerDay":0.5},{"start":"20:00","rateMlPerDay":0.7}]}"""),
            5 => S($$"""{"seq":{{seq}},"type":"pain.reported","at":"{{t}}","score":{{rng.Next(0, 11)}}}"""),
            6 when seq > 3 => S($$"""{"seq":{{seq}},"type":"events.lost","at":"{{t}}","fromSeq":{{Math.Max(1, seq - rng.Next(1, 4))}},"toSeq":{{seq - 1}},"reason":"hub-buffer-overflow"}"""),
            7 => S($$$"""{"seq":{{{seq}}},"type":"refill","at":"{{{t}}}","expectedResidualMl":2,"aspiratedResidualMl":{{{rng.NextDouble() * 3:0.##}}},"addedMl":35,"drug":"morphine","concentration":{"value":25,"unit":"mg/mL"}}"""),
            _ => S($$"""{"seq":{{seq}},"type":"delivery.state","at":"{{t}}","state":"running"}"""),
        };
    }

    /// <summary>Seqs for one message around <paramref name="next"/>: runs, gaps, resends, overlaps, reversals.</summary>
    public static List<long> Seqs(Random rng, long next)
    {
        var count = rng.Next(1, 12);
        var start = rng.Next(5) switch
        {
            0 => Math.Max(1, next - rng.Next(1, 20)),  // a resend overlapping what was sent
            1 => next + rng.Next(1, 10),               // a gap
            _ => next,
        };
        var seqs = Enumerable.Range(0, count).Select(i => start + i).ToList();
        switch (rng.Next(6))
        {
            case 0:
                seqs.Reverse();
                break;
            case 1:
                seqs.Insert(rng.Next(seqs.Count), seqs[rng.Next(seqs.Count)]);
                break;
            case 2:
                var i = rng.Next(seqs.Count);
                var j = rng.Next(seqs.Count);
                (seqs[i], seqs[j]) = (seqs[j], seqs[i]);
                break;
        }

        return seqs;
    }

    /// <summary>Applies one random mutation class to a payload; returns the class name and the bytes.</summary>
    public static (string Class, byte[] Payload) Mutate(Random rng, string json)
    {
        var kind = Mutations[rng.Next(Mutations.Length)];
        string At(string insert)
        {
            // Inside a string value when possible: right after an opening quote of a value.
            var quotes = Enumerable.Range(0, json.Length).Where(i => json[i] == '"' && i > 0 && json[i - 1] == ':').ToList();
            var pos = quotes.Count > 0 ? quotes[rng.Next(quotes.Count)] + 1 : json.Length / 2;
            return json.Insert(pos, insert);
        }

        string ReplaceNumber(string with)
        {
            var numbers = Enumerable.Range(1, json.Length - 1).Where(i => char.IsDigit(json[i]) && json[i - 1] == ':').ToList();
            if (numbers.Count == 0)
            {
                return json;
            }

            var p = numbers[rng.Next(numbers.Count)];
            var end = p;
            while (end < json.Length && (char.IsDigit(json[end]) || json[end] is '.' or 'e' or 'E' or '-' or '+'))
            {
                end++;
            }

            return json[..p] + with + json[end..];
        }

        string[] extremes = ["1e400", "-1e400", "1e308", "-0", "9223372036854775807", "9223372036854775808", "18446744073709551616", "4.9e-324", "123456789012345678901234567890", "0.1e-400"];
        string text;
        switch (kind)
        {
            case "lone-surrogate":
                text = At(rng.Next(2) == 0 ? "\\udc00" : "\\ud83d");
                break;
            case "control-char":
                text = At(rng.Next(2) == 0 ? "\\u0000" : "\\u001b");
                break;
            case "extreme-number":
                text = ReplaceNumber(extremes[rng.Next(extremes.Length)]);
                break;
            case "seq-extreme":
                var idx = json.IndexOf("\"seq\":", StringComparison.Ordinal);
                text = idx < 0 ? json : json.Insert(idx + 6, extremes[rng.Next(extremes.Length)] + ",\"x\":");
                break;
            case "duplicate-key":
                var k = json.IndexOf("\"type\":", StringComparison.Ordinal);
                text = k < 0 ? json : json.Insert(k, "\"type\":\"status\",");
                break;
            case "deep-nesting":
                var n = rng.Next(10, 3000);
                text = At("\",\"deep\":" + new string('[', n) + new string(']', n) + ",\"z\":\"");
                break;
            case "long-string":
                text = At(new string('x', rng.Next(100, 300_000)));
                break;
            case "wrong-type":
                text = ReplaceNumber(rng.Next(2) == 0 ? "\"12\"" : "[1]");
                break;
            case "drop-field":
                var f = json.IndexOf("\"at\":", StringComparison.Ordinal);
                text = f < 0 ? json : json.Remove(f, 5).Insert(f, "\"ta\":");
                break;
            case "truncate":
                text = json[..rng.Next(json.Length)];
                break;
            default:
                text = json;
                break;
        }

        var bytes = Encoding.UTF8.GetBytes(text);
        if (kind is "invalid-utf8" or "flip-byte" && bytes.Length > 0)
        {
            var p = rng.Next(bytes.Length);
            bytes[p] = kind == "invalid-utf8" ? (byte)(0x80 | rng.Next(0x40)) : (byte)rng.Next(256);
        }

        return (kind, bytes);
    }
}
