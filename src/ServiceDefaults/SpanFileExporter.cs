using System.Diagnostics;
using System.Globalization;
using System.Text;
using OpenTelemetry;

namespace PumpFleet.ServiceDefaults;

/// <summary>
/// Writes every exported span as one tab-separated line (trace id, span id, parent span id, name, start in Unix
/// microseconds, duration in microseconds) to a file: the benchmarks' latency budget reads it (bench/LoadBench
/// <c>--budget</c>). Not for production: an OTLP collector is. It runs behind OpenTelemetry's batch processor, so
/// the ingest path only enqueues.
/// </summary>
public sealed class SpanFileExporter : BaseExporter<Activity>
{
    private readonly StreamWriter _writer;

    /// <summary>Opens (appends to) <paramref name="path"/>.</summary>
    public SpanFileExporter(string path)
    {
        _writer = new StreamWriter(new FileStream(path, FileMode.Append, FileAccess.Write, FileShare.ReadWrite), new UTF8Encoding(false));
    }

    /// <inheritdoc />
    public override ExportResult Export(in Batch<Activity> batch)
    {
        var line = new StringBuilder(160);
        foreach (var a in batch)
        {
            line.Clear();
            line.Append(a.TraceId.ToHexString()).Append('\t').Append(a.SpanId.ToHexString()).Append('\t')
                .Append(a.ParentSpanId == default ? "-" : a.ParentSpanId.ToHexString()).Append('\t')
                .Append(a.Source.Name).Append('/').Append(a.DisplayName).Append('\t')
                .Append((a.StartTimeUtc - DateTime.UnixEpoch).Ticks / 10)
                .Append('\t').Append((long)(a.Duration.Ticks / 10));
            _writer.WriteLine(line.ToString());
        }

        _writer.Flush();
        return ExportResult.Success;
    }

    /// <inheritdoc />
    protected override bool OnShutdown(int timeoutMilliseconds)
    {
        _writer.Flush();
        return true;
    }

    /// <inheritdoc />
    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            _writer.Dispose();
        }

        base.Dispose(disposing);
    }
}
