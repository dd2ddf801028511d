namespace PumpFleet.ServiceDefaults;

/// <summary>
/// Distributed tracing (section <c>PumpFleet:Tracing</c>). Off by default: without a tracer provider no activity
/// source has a listener, so every <c>StartActivity</c> returns null and the instrumentation costs a null check.
/// </summary>
public sealed class TracingOptions
{
    /// <summary>Configuration section.</summary>
    public const string SectionName = "PumpFleet:Tracing";

    /// <summary>Collect traces even without an exporter configured here (tests add their own exporter). Default: false.</summary>
    public bool Enabled { get; set; }

    /// <summary>OTLP endpoint to export traces to (e.g. <c>http://collector:4317</c>); setting it turns tracing on. Default: none.</summary>
    public Uri? OtlpEndpoint { get; set; }

    /// <summary>OTLP transport: <c>grpc</c> (port 4317) or <c>http/protobuf</c> (port 4318). Default: grpc.</summary>
    public string OtlpProtocol { get; set; } = "grpc";

    /// <summary>Fraction of new traces sampled (0–1); a trace started by a hub's sampled <c>traceparent</c> follows the hub. Default: 1.</summary>
    public double SampleRatio { get; set; } = 1.0;

    /// <summary>
    /// Benchmark mode: also write every span to this file, one tab-separated line each (<see cref="SpanFileExporter"/>);
    /// setting it turns tracing on. Default: none.
    /// </summary>
    public string? SpanFile { get; set; }

    /// <summary>Whether tracing is on.</summary>
    public bool IsOn => Enabled || OtlpEndpoint is not null || !string.IsNullOrEmpty(SpanFile);
}
