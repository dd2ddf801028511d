using System.Text;
using System.Text.Json;
using PumpFleet.Simulator.Wire;

namespace PumpFleet.Simulator.Faults;

/// <summary>Writes ground-truth records as NDJSON, one object per line, flushed per record so a crashed run still leaves them.</summary>
public sealed class GroundTruthWriter(TextWriter writer) : IDisposable
{
    /// <summary>Opens (and truncates) a file.</summary>
    public static GroundTruthWriter Create(string path) =>
        new(new StreamWriter(path, append: false, new UTF8Encoding(encoderShouldEmitUTF8Identifier: false)));

    /// <summary>Writes one record.</summary>
    public void Write(GroundTruthRecord record)
    {
        writer.Write(ToJson(record));
        writer.Write('\n');
        writer.Flush();
    }

    /// <summary>The NDJSON line of a record (without the newline).</summary>
    public static string ToJson(GroundTruthRecord r)
    {
        using var buffer = new MemoryStream();
        using (var w = new Utf8JsonWriter(buffer))
        {
            w.WriteStartObject();
            w.WriteString("serial", r.Serial);
            w.WriteString("hubId", r.HubId);
            w.WriteString("kind", r.Kind);
            w.WriteString("start", WireJson.FormatTime(r.Start));
            if (r.End is { } end)
            {
                w.WriteString("end", WireJson.FormatTime(end));
            }
            else
            {
                w.WriteNull("end");
            }

            w.WritePropertyName("parameters");
            r.Parameters.WriteTo(w);
            w.WriteEndObject();
        }

        return Encoding.UTF8.GetString(buffer.ToArray());
    }

    /// <inheritdoc/>
    public void Dispose() => writer.Dispose();
}
